"""Device classes, their default priority, and how a class is derived from what a source calls itself."""

from __future__ import annotations

import re
from collections.abc import Sequence
from enum import StrEnum

import numpy as np
import pandas as pd


class DeviceClass(StrEnum):
    WATCH = "watch"
    PHONE = "phone"
    TABLET = "tablet"
    WEARABLE = "wearable"  # third-party wearable: Fitbit, Garmin, Oura, Whoop, Polar, CGM sensors
    SCALE_OR_APP = "scale_or_app"  # third-party scale or app: Withings Health Mate, MyFitnessPal, ...
    MANUAL = "manual"  # typed in by the person


# Highest first; the seed's order (apple_watch 100 > iphone 80 > ipad 70 > third_party_wearable 50 >
# third_party_scale 40 > manual_entry 10). A user may reorder it (app.users.source_priority).
DEFAULT_PRIORITY: tuple[DeviceClass, ...] = (
    DeviceClass.WATCH,
    DeviceClass.PHONE,
    DeviceClass.TABLET,
    DeviceClass.WEARABLE,
    DeviceClass.SCALE_OR_APP,
    DeviceClass.MANUAL,
)


def effective_priority(order: Sequence[str] | None) -> tuple[DeviceClass, ...]:
    """A user's own order (highest first) followed by the classes it leaves out, in the default order. Names that
    are not device classes are ignored (what is stored was validated when it was set)."""
    chosen = [DeviceClass(name) for name in dict.fromkeys(order or ()) if name in DeviceClass._value2member_map_]
    return (*chosen, *(c for c in DEFAULT_PRIORITY if c not in chosen))


_RULES: list[tuple[DeviceClass, re.Pattern[str]]] = [
    (DeviceClass.WATCH, re.compile(r"apple\s*watch|\bwatch\d|model:watch", re.IGNORECASE)),
    (DeviceClass.TABLET, re.compile(r"\bipad\b|model:ipad", re.IGNORECASE)),
    (DeviceClass.PHONE, re.compile(r"\biphone\b|model:iphone|\bpixel\b|\bgalaxy\b|android", re.IGNORECASE)),
    (
        DeviceClass.WEARABLE,
        re.compile(r"fitbit|garmin|\boura\b|whoop|polar|suunto|coros|amazfit|dexcom|libre|\bmi band", re.IGNORECASE),
    ),
]
# The Health app itself, in the locales seen in real exports; it writes the phone's own motion data.
_HEALTH_APP_NAMES = {"health", "здоровье", "salud", "santé", "gesundheit", "salute", "saúde", "健康", "건강"}


def classify_source(source_name: str, device: str | None, user_entered: bool) -> DeviceClass:
    """The device class of one source, from its name, its device descriptor and whether a person typed it in."""
    if user_entered:
        return DeviceClass.MANUAL
    text = f"{source_name} {device or ''}"
    for device_class, pattern in _RULES:
        if pattern.search(text):
            return device_class
    if source_name.strip().lower() in _HEALTH_APP_NAMES:
        return DeviceClass.PHONE
    return DeviceClass.SCALE_OR_APP


def classify_sources(source_names: pd.Series, devices: pd.Series, user_entered: pd.Series) -> pd.Series:
    """Vectorized `classify_source`: evaluated once per distinct (name, device, user_entered) combination."""
    name_codes, names = pd.factorize(source_names.astype("string").fillna(""))
    device_codes, device_names = pd.factorize(devices.astype("string").fillna(""))
    manual = user_entered.astype("boolean").fillna(False).to_numpy(dtype=bool)
    combined = (name_codes.astype(np.int64) * len(device_names) + device_codes) * 2 + manual
    distinct, row_combination = np.unique(combined, return_inverse=True)
    classes = np.array(
        [
            classify_source(
                str(names[key // 2 // len(device_names)]),
                str(device_names[key // 2 % len(device_names)]),
                bool(key % 2),
            )
            for key in distinct.tolist()
        ],
        dtype=object,
    )
    return pd.Series(classes[row_combination.reshape(-1)], index=source_names.index, dtype="str")
