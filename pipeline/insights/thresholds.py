"""Every threshold of the insight rules, in one place, each with where it comes from (docs/insights.md explains the
rules). Windows are in days and end on the evaluated day itself; "at least"/"under" are as written here and in the
rules' docstrings. The rules compare values rounded to ``COMPARE_DECIMALS`` decimals, so a value that prints as the
threshold counts as the threshold (8,000 steps against 10,000 is -20 %, not -19.999999999999996 %).
"""

from __future__ import annotations

from pipeline.catalog import METRICS, STEPS_METRIC

COMPARE_DECIMALS = 6

# Enough data: a window's mean or spread is only computed with more than half of its days present (product choice:
# one missing day, a watch left charging, must not hide a trend; a half-empty week says little).
MIN_DAYS_OF_7 = 4
MIN_DAYS_OF_28 = 15

# 1. Step goal. The default goal is the catalogue's (10,000 steps; a user's own goal overrides it). A streak is this
# many consecutive days at or above the goal (product choice: a full week). A week below this share of the goal
# (mean steps of the 7 days / goal) is an insight of its own.
DEFAULT_STEP_GOAL = float(METRICS[STEPS_METRIC].goal or 10_000)
STREAK_MIN_DAYS = 7
LOW_ATTAINMENT = 0.30  # "a week below 30 % attainment"

# 2. Activity trend: mean steps of the last 7 days against the 28 days before them. +-20 % is beyond the usual
# week-to-week variation of daily steps (Tudor-Locke et al., "How many days of pedometer monitoring predict weekly
# physical activity in adults?", Prev Med 2005: day-to-day CV ~ 30 %, weekly means vary far less).
TREND_DAYS, TREND_BASELINE_DAYS = 7, 28
TREND_CHANGE = 0.20  # +20 %: low (increasing); -20 %: medium (decreasing)
TREND_DROP_HIGH = 0.40  # -40 %: high

# 3. Resting heart rate: 7-day mean against the 28-day personal baseline before it. A sustained rise of 5+ bpm over
# one's baseline accompanies infection, overtraining and poor recovery (Radin et al., Lancet Digital Health 2020,
# doi:10.1016/S2589-7500(19)30222-5; Quer et al., Nat Med 2021).
RHR_DAYS, RHR_BASELINE_DAYS = 7, 28
RHR_RISE_MEDIUM = 5.0  # bpm
RHR_RISE_HIGH = 10.0  # bpm

# 4. Sleep deficit: adults should sleep 7 h or more a night (AASM/SRS consensus, Watson et al., Sleep 2015,
# doi:10.5665/sleep.4716); under 6 h is short sleep in most outcome studies.
SLEEP_DAYS = 7
SLEEP_SHORT_MINUTES = 7 * 60.0  # medium
SLEEP_VERY_SHORT_MINUTES = 6 * 60.0  # high

# 5. Sleep irregularity: the standard deviation (sample, n-1) of the nightly sleep midpoint over 7 nights; over an
# hour is "irregular" in the sleep regularity literature (Lunsford-Avery et al., Sci Rep 2018,
# doi:10.1038/s41598-018-32402-5: midpoint SD > 60 min linked to poorer cardiometabolic health).
MIDPOINT_DAYS = 7
MIDPOINT_SD_MINUTES = 60.0  # medium

# 6. Low SpO2: a healthy adult's resting saturation is 95-100 %; under 90 % is hypoxaemia (WHO, "Pulse oximetry
# training manual", 2011; BTS oxygen guideline 2017).
SPO2_LOW_MEAN = 95.0  # the evaluated day's mean under this: medium
SPO2_HYPOXAEMIA = 90.0  # a day's minimum under this...
SPO2_HYPOXAEMIA_DAYS, SPO2_WINDOW_DAYS = 2, 7  # ...on 2 of the last 7 days: high

# 7. Glucose: International Consensus on Time in Range (Battelino et al., Diabetes Care 2019,
# doi:10.2337/dci19-0028): 70-180 mg/dL, target > 70 % of readings in range and < 4 % below 70, over 14 days, with
# CGM data for >= 70 % of the 14 days. Coverage is counted in hours with a reading (so 5- and 15-minute sensors both
# qualify and finger-stick users, a few readings a day, do not: their share of readings is no time in range).
GLUCOSE_DAYS = 14
GLUCOSE_LOW, GLUCOSE_HIGH = 70.0, 180.0  # mg/dL, both in range
GLUCOSE_TIR_MEDIUM, GLUCOSE_TIR_HIGH = 0.70, 0.50  # in range under these: medium, high
GLUCOSE_TBR_HIGH = 0.04  # below range above this: high
GLUCOSE_MIN_COVERAGE = 0.70  # of the window's hours with at least one reading
GLUCOSE_MIN_HOURS = GLUCOSE_MIN_COVERAGE * GLUCOSE_DAYS * 24  # 235.2: 236 hours or more

# 8. Weight: a change of 5 % or more within 30 days, either way (5 % is the clinical mark of significant unintended
# weight change; NICE CG32 uses 5 % over 3-6 months, so within a month it is well worth a word).
WEIGHT_DAYS = 30
WEIGHT_CHANGE = 0.05  # medium

# 9. Data gap: a device class with data on most (4+) of the 7 days before, and none on the last 2 days (product choice:
# one quiet day is a watch left on the charger, two in a row after a regular week is a device that stopped syncing).
GAP_SILENT_DAYS = 2
GAP_HISTORY_DAYS = 7
GAP_MIN_ACTIVE_DAYS = 4  # low

# The longest look-back of any rule: a day's evaluation reads this many days of marts, the day included, and late data
# on a day changes the insights of this many days from it (RHR: 7 days + a 28-day baseline before them).
LOOKBACK_DAYS = max(
    TREND_DAYS + TREND_BASELINE_DAYS,
    RHR_DAYS + RHR_BASELINE_DAYS,
    WEIGHT_DAYS,
    GLUCOSE_DAYS,
    GAP_SILENT_DAYS + GAP_HISTORY_DAYS,
    STREAK_MIN_DAYS,
)
