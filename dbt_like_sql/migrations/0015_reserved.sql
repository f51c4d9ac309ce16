-- Intentionally empty: this version number is taken by a migration developed alongside 0016.
SELECT 1;
