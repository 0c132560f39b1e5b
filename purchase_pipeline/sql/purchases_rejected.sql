-- purchases_rejected: every record of one arrival day that is not a purchase, with why.
-- Parameters: :dt (DATE), :window_start and :window_end (TIMESTAMP, the day's arrival hours).
SELECT
    dt,
    source_key,
    reason,
    record
FROM landing_records
WHERE
    arrival_hour >= :window_start
    AND arrival_hour < :window_end
    AND reason IS NOT NULL
