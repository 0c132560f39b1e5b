-- purchases: the accepted purchases of one purchase day, one row per purchase.
-- Reads the landing records of the day's arrival hours and of the next day's (late
-- arrivals); duplicates (same purchase_id) keep the first by source key, then by fields.
-- Parameters: :dt (DATE), :window_start and :window_end (TIMESTAMP, the arrival hours read).
WITH accepted AS (
    SELECT
        purchase_id,
        book_id,
        title,
        author,
        genre,
        user_id,
        user_country,
        user_age,
        age_band,
        purchased_at,
        source_key,
        dt
    FROM landing_records
    WHERE
        arrival_hour >= :window_start
        AND arrival_hour < :window_end
        AND reason IS NULL
        AND dt = :dt
),

-- Most purchases land once. Only the ids that landed more than once are ranked: a window
-- over every id costs more than counting them all. Joins, not IN: a row whose purchase_id is
-- NULL (which the landing step never writes) must still reach the table, where the
-- accounting identity check reports it, instead of vanishing in a NULL comparison.
repeated AS (
    SELECT purchase_id
    FROM accepted
    GROUP BY purchase_id
    HAVING count(*) > 1
),

ranked AS (
    SELECT
        a.*,
        row_number() OVER (
            PARTITION BY a.purchase_id
            ORDER BY
                a.source_key,
                a.purchased_at,
                a.book_id,
                a.user_id,
                a.title NULLS FIRST,
                a.author NULLS FIRST,
                a.genre,
                a.user_country,
                a.user_age NULLS FIRST
        ) AS copy_no
    FROM accepted AS a
    INNER JOIN repeated AS r ON a.purchase_id = r.purchase_id
)

SELECT
    a.purchase_id,
    a.book_id,
    a.title,
    a.author,
    a.genre,
    a.user_id,
    a.user_country,
    a.user_age,
    a.age_band,
    a.purchased_at,
    a.source_key,
    a.dt
FROM accepted AS a
LEFT JOIN repeated AS r ON a.purchase_id = r.purchase_id
WHERE r.purchase_id IS NULL
UNION ALL
SELECT
    purchase_id,
    book_id,
    title,
    author,
    genre,
    user_id,
    user_country,
    user_age,
    age_band,
    purchased_at,
    source_key,
    dt
FROM ranked
WHERE copy_no = 1
