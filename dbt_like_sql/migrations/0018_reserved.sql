-- Reserved: the per-user encryption's migration takes number 18. This no-op keeps 0019 in sequence until it lands
-- (then this file is dropped in favour of it).
SELECT 1;
