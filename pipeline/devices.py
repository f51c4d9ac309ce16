"""Device classes, their default priority, and how a class is derived from what a source calls itself.

The one place that turns a word into a device class: the classes' own names and the seed's ``sourceDevice``
vocabulary (``apple_watch``, ``iphone``, ``ipad``, ``third_party_wearable``, ``third_party_scale``, ``manual_entry``)
name a class outright, wherever they arrive (a ``deviceClass`` field, a ``sourceDevice``, a device's registration);
any other source name is classified from what it says (an Apple Watch, an iPhone, a Fitbit, ...).
"""

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


# The seed's HealthSample.sourceDevice words (the keys of its DEVICE_PRIORITY), beside the classes' own names.
SEED_DEVICE_WORDS: dict[str, DeviceClass] = {
    "apple_watch": DeviceClass.WATCH,
    "iphone": DeviceClass.PHONE,
    "ipad": DeviceClass.TABLET,
    "third_party_wearable": DeviceClass.WEARABLE,
    "third_party_scale": DeviceClass.SCALE_OR_APP,
    "manual_entry": DeviceClass.MANUAL,
}
_NAMED: dict[str, DeviceClass] = {**{c.value: c for c in DeviceClass}, **SEED_DEVICE_WORDS}
_SEPARATORS = re.compile(r"[\s-]+")


def device_class_named(word: str | None) -> DeviceClass | None:
    """The class a word names: a class's own name or a seed word, in any case, with spaces or hyphens for the
    underscores ("Manual Entry", "third-party-scale"). None for any other text, which names no class."""
    if word is None:
        return None
    return _NAMED.get(_SEPARATORS.sub("_", word.strip().lower()))


def classes_named(words: pd.Series) -> pd.Series:
    """Vectorized `device_class_named` (once per distinct word): the class each word names, missing where none."""
    codes, distinct = pd.factorize(words.astype("string"))
    named = [device_class_named(str(word)) for word in distinct]
    values = np.array([None, *(c.value if c is not None else None for c in named)], dtype=object)
    return pd.Series(values[codes + 1], index=words.index, dtype="string")


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


def classify_source(
    source_name: str, device: str | None, user_entered: bool, otherwise: DeviceClass | None = None
) -> DeviceClass:
    """The device class of one source, from its name, its device descriptor and whether a person typed it in.
    A name that names a class (`device_class_named`) is that class; ``otherwise``, when given, is the class of a
    name that does not (a registered device's own class), instead of reading the name."""
    if user_entered:
        return DeviceClass.MANUAL
    named = device_class_named(source_name)
    if named is not None:
        return named
    if otherwise is not None:
        return otherwise
    text = f"{source_name} {device or ''}"
    for device_class, pattern in _RULES:
        if pattern.search(text):
            return device_class
    if source_name.strip().lower() in _HEALTH_APP_NAMES:
        return DeviceClass.PHONE
    return DeviceClass.SCALE_OR_APP


def classify_sources(
    source_names: pd.Series, devices: pd.Series, user_entered: pd.Series, otherwise: DeviceClass | None = None
) -> pd.Series:
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
                otherwise,
            )
            for key in distinct.tolist()
        ],
        dtype=object,
    )
    return pd.Series(classes[row_combination.reshape(-1)], index=source_names.index, dtype="str")
