"""The daily health score (docs/health-score.md): activity, sleep and vitals, 0-100, relative to the day's cohort."""
