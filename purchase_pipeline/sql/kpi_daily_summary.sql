-- kpi_daily_summary: one row per purchase day, also for a day without purchases.
-- Parameters: :dt (DATE).
SELECT
    :dt AS dt,
    count(*) AS purchases,
    count(DISTINCT user_id) AS buyers,
    count(DISTINCT book_id) AS books
FROM purchases
WHERE dt = :dt
