"""The days an erasure rescores are cut into runs of consecutive days, one scoring pass each."""

from __future__ import annotations

import datetime as dt

from pipeline.erasure.recompute import _runs


def day(n: int) -> dt.date:
    return dt.date(2024, 2, 27) + dt.timedelta(days=n)


def test_consecutive_days_become_one_range_across_a_leap_day_and_gaps_split_them() -> None:
    # 02-27, 02-28, 02-29, 03-01 | 03-03 | 03-05, 03-06; unordered and repeated on input
    days = [day(8), day(0), day(2), day(1), day(3), day(6), day(9), day(2)]
    assert list(_runs(days)) == [(day(0), day(3)), (day(6), day(6)), (day(8), day(9))]
    assert list(_runs([])) == []
