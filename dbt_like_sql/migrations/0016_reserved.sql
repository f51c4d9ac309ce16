-- Intentionally empty: this version number is taken by a migration developed alongside 0017.
SELECT 1;
