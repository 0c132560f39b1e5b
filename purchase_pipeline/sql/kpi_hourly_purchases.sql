-- kpi_hourly_purchases: purchases and distinct buyers per UTC hour of one purchase day,
-- one row per hour with purchases. Parameters: :dt (DATE).
SELECT
    dt,
    hour(purchased_at) AS hour,
    count(*) AS purchases,
    count(DISTINCT user_id) AS buyers
FROM purchases
WHERE dt = :dt
GROUP BY dt, hour(purchased_at)
