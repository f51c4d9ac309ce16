"""The mess real data arrives with, added to clean synthetic samples.

Exact retries, re-written duplicates, late batches, and about 1 % malformed or implausible rows. Junk arrives as
extra rows (a buggy app, a broken sync) beside the real measurements, which stay: what the devices saw is still all
there, so the ground truth stays exact.

The mess is added to one user's samples at a time, with that user's own random stream: a user's rows are the same
whichever other users are generated with them, so a dataset can be generated (and landed) in chunks of users.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.synthetic.config import SyntheticConfig


def add_mess(
    samples: pd.DataFrame, config: SyntheticConfig, rng: np.random.Generator, origin: pd.Timestamp
) -> pd.DataFrame:
    """The samples with their arrival day (whole days since ``origin``, the same instant for every user of the
    dataset, plus 1-5 days for late ones), plus retries, re-written duplicates, malformed and implausible rows."""
    n = len(samples)
    samples = samples.assign(arrival_day=((samples["end"] - origin) // pd.Timedelta(days=1)))
    late = rng.random(n) < config.late_rate
    samples.loc[late, "arrival_day"] += rng.integers(1, 6, late.sum())
    retries = samples.sample(frac=config.retry_rate, random_state=int(rng.integers(1 << 31)))
    retries = retries.assign(arrival_day=retries["arrival_day"] + 1)
    rewrites = samples.sample(frac=config.rewrite_rate, random_state=int(rng.integers(1 << 31)))
    rewrites = rewrites.assign(external_id="rewritten")
    junk = samples.sample(frac=config.malformed_rate, random_state=int(rng.integers(1 << 31))).copy()
    kinds = rng.integers(0, 4, len(junk))
    junk["value"] = junk["value"].astype(object)
    junk.loc[junk.index[kinds == 0], "value"] = "n/a"
    junk.loc[junk.index[kinds == 1], "unit"] = "furlong"
    flipped = junk.index[kinds == 2]
    junk.loc[flipped, "end"] = junk.loc[flipped, "start"] - pd.Timedelta(minutes=5)
    junk.loc[junk.index[kinds == 3], "start"] = pd.NaT
    heart = samples[samples["metric"] == "HEART_RATE"]
    implausible = heart.sample(
        frac=min(1.0, config.implausible_rate * n / max(len(heart), 1)), random_state=int(rng.integers(1 << 31))
    ).assign(value=400.0, external_id="glitch")
    out = pd.concat([samples, retries, rewrites, junk, implausible], ignore_index=True)
    out["value"] = out["value"].astype(object)
    return out
