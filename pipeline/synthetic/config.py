"""What the synthetic generator makes: how many users and days, from which day, the seed, and how much mess."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class SyntheticConfig:
    users: int = 10
    days: int = 14
    start: dt.date = dt.date(2024, 3, 4)  # covers the US (10 Mar) DST change; 60 days reach the EU one (31 Mar)
    seed: int = 7
    malformed_rate: float = 0.005
    implausible_rate: float = 0.005
    retry_rate: float = 0.004  # exact re-sends: same identity, collapse at landing
    rewrite_rate: float = 0.003  # same content, another external id: collapse in the pipeline's exact-dedupe
    late_rate: float = 0.05  # share of samples synced 1-5 days late
