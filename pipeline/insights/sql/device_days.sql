-- The device classes that sent data on each user-day (any metric).
SELECT DISTINCT t.user_id, t.local_date, t.device_class
FROM core.source_totals t
JOIN insight_users u USING (user_id)
WHERE t.local_date BETWEEN /* first day */ AND /* last day */
  AND t.raw > 0
