-- kpi_genre_daily: purchases and distinct buyers per genre for one purchase day.
-- Parameters: :dt (DATE).
SELECT
    dt,
    genre,
    count(*) AS purchases,
    count(DISTINCT user_id) AS buyers
FROM purchases
WHERE dt = :dt
GROUP BY dt, genre
