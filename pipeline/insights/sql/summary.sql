-- Insights by rule, severity and status, for the asset's metadata.
SELECT rule, severity, status, count(*) AS insights
FROM marts.insights
GROUP BY rule, severity, status
ORDER BY rule, severity, status
