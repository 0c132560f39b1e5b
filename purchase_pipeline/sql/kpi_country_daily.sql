-- kpi_country_daily: purchases and distinct buyers per user_country for one purchase day.
-- Parameters: :dt (DATE).
SELECT
    dt,
    user_country,
    count(*) AS purchases,
    count(DISTINCT user_id) AS buyers
FROM purchases
WHERE dt = :dt
GROUP BY dt, user_country
