from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.catalog import canonical_factors
from pipeline.devices import DeviceClass, classify_source


@pytest.mark.parametrize(
    ("metric", "unit", "value", "canonical"),
    [
        ("DISTANCE", "km", 0.00288, 2.88),
        ("DISTANCE", "mi", 1.0, 1609.344),
        ("DISTANCE", "ft", 10.0, 3.048),
        ("ACTIVE_ENERGY", "kJ", 4.184, 1.0),
        ("ACTIVE_ENERGY", "Cal", 12.0, 12.0),
        ("WEIGHT", "lb", 100.0, 45.359237),
        ("WEIGHT", "g", 65_000.0, 65.0),
        ("OXYGEN_SATURATION", "%", 0.97, 97.0),  # Apple writes fractions with unit "%"
        ("OXYGEN_SATURATION", "%", 96.0, 96.0),
        ("BODY_FAT", "%", 0.215, 21.5),
        ("BLOOD_GLUCOSE", "mmol<180.1558800000541>/L", 5.5, 5.5 * 18.01558800000541),
        ("BLOOD_GLUCOSE", "mmol/L", 5.0, 90.078),
        ("BLOOD_GLUCOSE", "mg/dL", 101.0, 101.0),
        ("HEART_RATE", "count/min", 72.0, 72.0),
        ("STEPS", "count", 329.0, 329.0),
    ],
)
def test_units_convert_to_the_canonical_unit(metric: str, unit: str, value: float, canonical: float) -> None:
    factors = canonical_factors(pd.Series([metric]), pd.Series([unit]), pd.Series([value]))
    assert value * factors.iloc[0] == pytest.approx(canonical, rel=1e-9)


def test_unconvertible_units_have_no_factor() -> None:
    factors = canonical_factors(
        pd.Series(["HEART_RATE", "WEIGHT", "STEPS"]), pd.Series(["kg", "furlong", "km"]), pd.Series([1.0, 2.0, 3.0])
    )
    assert np.isnan(factors).all()


@pytest.mark.parametrize(
    ("source", "device", "typed", "expected"),
    [
        ("Alexandre's Apple Watch", "<<HKDevice>, name:Apple Watch, model:Watch>", False, DeviceClass.WATCH),
        ("Apple\u00a0Watch", None, False, DeviceClass.WATCH),
        ("Alexandre's iPhone", None, False, DeviceClass.PHONE),
        ("Simon\u2019s iPhone", None, False, DeviceClass.PHONE),
        ("Health", None, False, DeviceClass.PHONE),
        ("Здоровье", None, True, DeviceClass.MANUAL),
        ("Health Mate", None, False, DeviceClass.SCALE_OR_APP),
        ("Fitbit Charge", None, False, DeviceClass.WEARABLE),
        ("Dexcom G7", None, False, DeviceClass.WEARABLE),
        ("My iPad", None, False, DeviceClass.TABLET),
    ],
)
def test_device_class_from_source(source: str, device: str | None, typed: bool, expected: DeviceClass) -> None:
    assert classify_source(source, device, typed) == expected
