-- kpi_age_band_daily: purchases and distinct buyers per age_band for one purchase day.
-- Parameters: :dt (DATE).
SELECT
    dt,
    age_band,
    count(*) AS purchases,
    count(DISTINCT user_id) AS buyers
FROM purchases
WHERE dt = :dt
GROUP BY dt, age_band
