-- The days just evaluated for every user (an episode that held on the day before one of them and not on it is
-- resolved on it). The first evaluation's time stays.
INSERT INTO marts.insight_evaluations (local_date)
SELECT generate_series(/* first day */, /* last day */, interval '1 day')::date
ON CONFLICT (local_date) DO NOTHING
