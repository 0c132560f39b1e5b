-- landing_records: every record that landed in one arrival hour, split out of its object and
-- classified by docs/data-rules.md. One row per record. `reason` is NULL for a record bound
-- for `purchases` (before de-duplication), else the rejection reason.
--
-- Input: landing_lines (source_key, line), the lines of the hour's objects.
-- Parameters: :arrival_hour (TIMESTAMP, the hour's start).
WITH lines AS (
    SELECT
        source_key,
        line,
        row_number() OVER (PARTITION BY source_key) AS line_no
    FROM landing_lines
    WHERE NOT regexp_like(line, '^[ \t\r]*$')
),

-- Firehose with no delimiter lands `{..}{..}{..}` on one line. Cutting after every '}' gives
-- fragments; when every fragment of a line is a JSON object, those are its records.
fragments AS (
    SELECT
        l.source_key,
        l.line_no,
        f.fragment,
        f.fragment_no
    FROM lines AS l
    CROSS JOIN
        UNNEST(split(replace(l.line, '}', '}' || chr(10)), chr(10)))
        WITH ORDINALITY AS f (fragment, fragment_no)
    WHERE f.fragment <> ''
),

checked_fragments AS (
    SELECT
        source_key,
        line_no,
        fragment,
        fragment_no,
        regexp_replace(fragment, '^[ \t\r]+|[ \t\r]+$', '') AS trimmed
    FROM fragments
),

line_shapes AS (
    SELECT
        source_key,
        line_no,
        bool_and(
            trimmed = ''
            OR (substr(trimmed, 1, 1) = '{' AND try(json_parse(trimmed)) IS NOT NULL)
        ) AS is_simple
    FROM checked_fragments
    GROUP BY source_key, line_no
),

simple_records AS (
    SELECT
        c.source_key,
        c.trimmed AS record,
        TRUE AS is_object
    FROM checked_fragments AS c
    INNER JOIN line_shapes AS s
        ON c.source_key = s.source_key AND c.line_no = s.line_no
    WHERE s.is_simple AND c.trimmed <> ''
),

-- The other lines have a '}' inside a string, nested objects, or broken JSON. Track the
-- string state (parity of unescaped quotes) and the brace depth outside strings from
-- fragment to fragment; a record ends where the depth is back to zero outside a string.
complex_fragments AS (
    SELECT
        c.source_key,
        c.line_no,
        c.fragment,
        c.fragment_no,
        length(regexp_replace(c.fragment, '\\.|[^"]', '')) AS quotes
    FROM checked_fragments AS c
    INNER JOIN line_shapes AS s
        ON c.source_key = s.source_key AND c.line_no = s.line_no
    WHERE NOT s.is_simple
),

fragment_strings AS (
    SELECT
        source_key,
        line_no,
        fragment,
        fragment_no,
        quotes,
        coalesce(
            sum(quotes) OVER (
                PARTITION BY source_key, line_no
                ORDER BY fragment_no
                ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
            ),
            0
        ) % 2 AS in_string_before
    FROM complex_fragments
),

fragment_code AS (
    SELECT
        source_key,
        line_no,
        fragment,
        fragment_no,
        quotes,
        regexp_replace(
            CASE
                WHEN in_string_before = 1
                    THEN regexp_replace(fragment, '^(?:[^"\\]|\\.)*("|$)', '')
                ELSE fragment
            END,
            '"(?:[^"\\]|\\.)*("|$)',
            ''
        ) AS code
    FROM fragment_strings
),

fragment_depths AS (
    SELECT
        source_key,
        line_no,
        fragment,
        fragment_no,
        sum(length(regexp_replace(code, '[^{]', '')) - length(regexp_replace(code, '[^}]', '')))
            OVER (
                PARTITION BY source_key, line_no
                ORDER BY fragment_no
                ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
            ) AS depth_after,
        sum(quotes) OVER (
            PARTITION BY source_key, line_no
            ORDER BY fragment_no
            ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
        ) % 2 AS in_string_after
    FROM fragment_code
),

fragment_groups AS (
    SELECT
        source_key,
        line_no,
        fragment,
        fragment_no,
        coalesce(
            sum(CASE WHEN depth_after = 0 AND in_string_after = 0 THEN 1 ELSE 0 END) OVER (
                PARTITION BY source_key, line_no
                ORDER BY fragment_no
                ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
            ),
            0
        ) AS group_no
    FROM fragment_depths
),

candidate_records AS (
    SELECT
        source_key,
        line_no,
        group_no,
        record,
        record = '' OR (substr(record, 1, 1) = '{' AND try(json_parse(record)) IS NOT NULL)
            AS is_object
    FROM (
        SELECT
            source_key,
            line_no,
            group_no,
            regexp_replace(
                array_join(array_agg(fragment ORDER BY fragment_no), ''), '^[ \t\r]+|[ \t\r]+$', ''
            ) AS record
        FROM fragment_groups
        GROUP BY source_key, line_no, group_no
    ) AS grouped
),

-- From the first group that is not an object, the rest of the line is one malformed record.
first_broken AS (
    SELECT
        source_key,
        line_no,
        min(CASE WHEN NOT is_object THEN group_no END) AS broken_from
    FROM candidate_records
    GROUP BY source_key, line_no
),

complex_records AS (
    SELECT
        c.source_key,
        c.record,
        TRUE AS is_object
    FROM candidate_records AS c
    INNER JOIN first_broken AS b
        ON c.source_key = b.source_key AND c.line_no = b.line_no
    WHERE c.record <> '' AND (b.broken_from IS NULL OR c.group_no < b.broken_from)
    UNION ALL
    SELECT
        g.source_key,
        regexp_replace(
            array_join(array_agg(g.fragment ORDER BY g.fragment_no), ''), '^[ \t\r]+|[ \t\r]+$', ''
        ) AS record,
        FALSE AS is_object
    FROM fragment_groups AS g
    INNER JOIN first_broken AS b
        ON g.source_key = b.source_key AND g.line_no = b.line_no
    WHERE g.group_no >= b.broken_from
    GROUP BY g.source_key, g.line_no
),

records AS (
    SELECT source_key, record, is_object FROM simple_records
    UNION ALL
    SELECT source_key, record, is_object FROM complex_records
),

-- Parse each object once into a map of its fields. An object that repeats a key cannot be
-- read unambiguously (engines disagree on which value wins) and is malformed.
parsed AS (
    SELECT
        source_key,
        record,
        CASE WHEN is_object THEN try(CAST(json_parse(record) AS MAP(VARCHAR, JSON))) END AS doc
    FROM records
),

-- Each field as its JSON text (its first character tells its type) and as a scalar string.
documents AS (
    SELECT
        source_key,
        record,
        doc IS NOT NULL AS is_object,
        doc
    FROM parsed
),

fields AS (
    SELECT
        source_key,
        record,
        is_object,
        json_format(element_at(doc, 'bookId')) AS book_id_json,
        json_extract_scalar(element_at(doc, 'bookId'), '$') AS book_id_text,
        json_format(element_at(doc, 'userId')) AS user_id_json,
        json_extract_scalar(element_at(doc, 'userId'), '$') AS user_id_text,
        json_format(element_at(doc, 'purchaseTimestamp')) AS timestamp_json,
        try_cast(json_extract_scalar(element_at(doc, 'purchaseTimestamp'), '$') AS DOUBLE) AS timestamp_value,
        json_format(element_at(doc, 'purchaseId')) AS purchase_id_json,
        json_extract_scalar(element_at(doc, 'purchaseId'), '$') AS purchase_id_text,
        json_format(element_at(doc, 'title')) AS title_json,
        json_extract_scalar(element_at(doc, 'title'), '$') AS title_text,
        json_format(element_at(doc, 'author')) AS author_json,
        json_extract_scalar(element_at(doc, 'author'), '$') AS author_text,
        json_format(element_at(doc, 'genre')) AS genre_json,
        json_extract_scalar(element_at(doc, 'genre'), '$') AS genre_text,
        json_format(element_at(doc, 'userCountry')) AS country_json,
        json_extract_scalar(element_at(doc, 'userCountry'), '$') AS country_text,
        json_format(element_at(doc, 'userAge')) AS age_json,
        try_cast(json_extract_scalar(element_at(doc, 'userAge'), '$') AS DOUBLE) AS age_value
    FROM documents
),

typed AS (
    SELECT
        source_key,
        record,
        CASE
            WHEN NOT is_object THEN 'malformed_json'
            WHEN book_id_json IS NULL OR book_id_json IN ('null', '""')
                OR user_id_json IS NULL OR user_id_json IN ('null', '""')
                OR timestamp_json IS NULL OR timestamp_json = 'null'
                THEN 'missing_field'
            WHEN substr(book_id_json, 1, 1) <> '"'
                OR substr(user_id_json, 1, 1) <> '"'
                OR NOT regexp_like(timestamp_json, '^-?[0-9]')
                THEN 'bad_type'
        END AS shape_error,
        book_id_text AS book_id,
        user_id_text AS user_id,
        -- Integer milliseconds, rounded half up, so both engines compare exact integers.
        CASE
            WHEN timestamp_value >= 1e11 THEN floor(timestamp_value + 0.5)
            ELSE floor(timestamp_value * 1000 + 0.5)
        END AS timestamp_ms,
        CASE
            WHEN substr(purchase_id_json, 1, 1) = '"' AND purchase_id_text <> ''
                THEN purchase_id_text
        END AS given_purchase_id,
        CASE WHEN substr(title_json, 1, 1) = '"' THEN title_text END AS title,
        CASE WHEN substr(author_json, 1, 1) = '"' THEN author_text END AS author,
        CASE
            WHEN substr(genre_json, 1, 1) = '"' AND genre_text <> '' THEN genre_text
            ELSE 'unknown'
        END AS genre,
        CASE
            WHEN substr(country_json, 1, 1) = '"' AND country_text <> '' THEN country_text
            ELSE 'unknown'
        END AS user_country,
        CASE
            WHEN regexp_like(age_json, '^-?[0-9]')
                AND age_value = floor(age_value)
                AND age_value BETWEEN 0 AND 120
                THEN CAST(age_value AS INTEGER)
        END AS user_age
    FROM fields
),

classified AS (
    SELECT
        *,
        CASE
            WHEN shape_error IS NOT NULL THEN shape_error
            WHEN timestamp_ms IS NULL
                OR timestamp_ms < 946684800000
                OR timestamp_ms >= to_unixtime(:arrival_hour) * 1000 + 3600000
                THEN 'bad_timestamp'
            WHEN floor(timestamp_ms / 86400000) < floor(to_unixtime(:arrival_hour) / 86400) - 1
                THEN 'too_late'
        END AS reason
    FROM typed
)

SELECT
    source_key,
    CAST(:arrival_hour AS TIMESTAMP) AS arrival_hour,
    reason,
    CASE
        WHEN reason IS NULL
            THEN date_add('day', CAST(floor(timestamp_ms / 86400000) AS BIGINT), DATE '1970-01-01')
        ELSE CAST(:arrival_hour AS DATE)
    END AS dt,
    CASE WHEN reason IS NOT NULL THEN substr(record, 1, 16384) END AS record,
    CASE
        WHEN reason IS NOT NULL THEN NULL
        WHEN given_purchase_id IS NOT NULL THEN given_purchase_id
        ELSE lower(to_hex(sha256(to_utf8(
            coalesce(CAST(length(book_id) AS VARCHAR) || ':' || book_id, '-')
            || '|' || coalesce(CAST(length(user_id) AS VARCHAR) || ':' || user_id, '-')
            || '|' || coalesce(
                CAST(length(CAST(CAST(timestamp_ms AS BIGINT) AS VARCHAR)) AS VARCHAR)
                || ':' || CAST(CAST(timestamp_ms AS BIGINT) AS VARCHAR),
                '-'
            )
            || '|' || coalesce(CAST(length(title) AS VARCHAR) || ':' || title, '-')
            || '|' || coalesce(CAST(length(author) AS VARCHAR) || ':' || author, '-')
            || '|' || coalesce(CAST(length(genre) AS VARCHAR) || ':' || genre, '-')
            || '|' || coalesce(CAST(length(user_country) AS VARCHAR) || ':' || user_country, '-')
            || '|' || coalesce(
                CAST(length(CAST(user_age AS VARCHAR)) AS VARCHAR) || ':' || CAST(user_age AS VARCHAR),
                '-'
            )
        ))))
    END AS purchase_id,
    CASE WHEN reason IS NULL THEN book_id END AS book_id,
    CASE WHEN reason IS NULL THEN title END AS title,
    CASE WHEN reason IS NULL THEN author END AS author,
    CASE WHEN reason IS NULL THEN genre END AS genre,
    CASE WHEN reason IS NULL THEN user_id END AS user_id,
    CASE WHEN reason IS NULL THEN user_country END AS user_country,
    CASE WHEN reason IS NULL THEN user_age END AS user_age,
    CASE
        WHEN reason IS NOT NULL THEN NULL
        WHEN user_age IS NULL THEN 'unknown'
        WHEN user_age < 18 THEN '<18'
        WHEN user_age < 25 THEN '18-24'
        WHEN user_age < 35 THEN '25-34'
        WHEN user_age < 45 THEN '35-44'
        WHEN user_age < 55 THEN '45-54'
        WHEN user_age < 65 THEN '55-64'
        ELSE '65+'
    END AS age_band,
    CASE
        WHEN reason IS NULL
            THEN date_add('millisecond', CAST(timestamp_ms AS BIGINT), TIMESTAMP '1970-01-01 00:00:00')
    END AS purchased_at
FROM classified
