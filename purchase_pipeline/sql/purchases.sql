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
-- over every id costs more than counting them all.
repeated AS (
    SELECT purchase_id
    FROM accepted
    GROUP BY purchase_id
    HAVING count(*) > 1
),

ranked AS (
    SELECT
        *,
        row_number() OVER (
            PARTITION BY purchase_id
            ORDER BY
                source_key,
                purchased_at,
                book_id,
                user_id,
                title NULLS FIRST,
                author NULLS FIRST,
                genre,
                user_country,
                user_age NULLS FIRST
        ) AS copy_no
    FROM accepted
    WHERE purchase_id IN (SELECT purchase_id FROM repeated)
)

-- (purchase_id is never NULL in `accepted`, so NOT IN is a plain anti-join.)
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
FROM accepted
WHERE purchase_id NOT IN (SELECT purchase_id FROM repeated)
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
