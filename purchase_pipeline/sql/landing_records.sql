-- landing_records: every record of the landing objects read, split out of its object and
-- classified by docs/data-rules.md. One row per record. `reason` is NULL for a record bound
-- for `purchases` (before de-duplication), else the rejection reason.
--
-- Input: landing_lines (source_key, arrival_hour, line, read_error), the lines of landing
-- objects of any number of arrival hours, in any order. An object the engine cannot read
-- whole (a truncated gzip stream, bytes that are not UTF-8) is one row with no line and
-- `read_error` saying why: one `unreadable_object` record. `arrival_hour` is the timestamp of
-- its object's key's YYYY/MM/DD/HH folders, which the engine works out once an object rather
-- than once a line.
--
-- Splitting a line into records, fast for what Firehose writes and exact for the rest:
-- 1. Cut the line at every '}{' (Firehose concatenates records with no delimiter). When every
--    piece of a line is a JSON object, those are its records: almost every line. (A blank
--    line is one empty piece, and holds no record.)
-- 2. Otherwise '}{' may sit inside a string, or a record is broken. Pieces are glued back
--    into groups wherever a cut fell inside a string (odd count of unescaped quotes so far).
-- 3. A group that is still not one object is cut after every '}' and read like a parser:
--    a record ends where the brace depth outside strings is back at zero. From the first text
--    that is not an object, the rest of the line is one malformed record.
--
-- Cost: this query is the only one that reads raw JSON, so it is written for the common case.
-- Every cheap test (a '}{' anywhere) runs before an expensive one (a JSON parse), a piece is
-- trimmed only when it fails that parse (JSON allows the spaces around it), and a record is
-- parsed once into a map whose values are looked up once. Step 1 works on each line's array
-- of pieces, row by row: no join or window over every line, so no line needs a number; steps
-- 2 and 3 number the few lines they read.
WITH lines AS (
    SELECT
        source_key,
        line,
        read_error,
        arrival_hour,
        CASE
            WHEN read_error IS NOT NULL THEN ARRAY[]
            WHEN strpos(line, '}{') = 0 THEN ARRAY[line]
            ELSE split(replace(line, '}{', '}' || chr(10) || '{'), chr(10))
        END AS pieces
    FROM landing_lines
),

-- What each piece is: 0 blank (no record, breaks nothing), 1 a readable object that is also
-- a map of its fields, 2 an object with a repeated key (engines disagree on which value wins,
-- so it is a malformed record, but it still splits the line), 3 not an object. Each piece is
-- parsed once for these tests; the map itself is built in `records`. Pieces are not trimmed:
-- JSON allows spaces and tabs around a value (a line holds no line break), so only a piece
-- that fails the first test, a rare one, is trimmed to be told apart.
checked_lines AS (
    SELECT
        source_key,
        arrival_hour,
        line,
        read_error,
        pieces,
        transform(
            pieces,
            p -> CASE
                WHEN TRY(CAST(json_parse(p) AS MAP(VARCHAR, JSON))) IS NOT NULL THEN 1
                WHEN trim(BOTH ' ' || chr(9) || chr(13) FROM p) = '' THEN 0
                WHEN substr(trim(BOTH ' ' || chr(9) || chr(13) FROM p), 1, 1) <> '{' THEN 3
                WHEN TRY(json_parse(p)) IS NOT NULL THEN 2
                ELSE 3
            END
        ) AS kinds
    FROM lines
),

-- What each line holds, one row per text: the pieces of a line whose pieces are all blank or
-- objects (almost every line; kinds 1 and 2, blank pieces dropped), the whole of any other
-- line (kind 4), or the reason an object could not be read (kind 5). Every later step reads
-- this one CTE, so each line's kinds are computed once.
line_texts AS (
    SELECT
        c.source_key,
        c.arrival_hour,
        t.text,
        t.kind
    FROM (
        SELECT
            source_key,
            arrival_hour,
            CASE
                WHEN read_error IS NOT NULL THEN ARRAY[read_error]
                WHEN contains(kinds, 3) THEN ARRAY[line]
                ELSE pieces
            END AS texts,
            CASE
                WHEN read_error IS NOT NULL THEN ARRAY[5]
                WHEN contains(kinds, 3) THEN ARRAY[4]
                ELSE kinds
            END AS kinds
        FROM checked_lines
    ) AS c
    CROSS JOIN UNNEST(c.texts, c.kinds) AS t (text, kind)
    WHERE t.kind <> 0
),

-- The few lines that are not all objects, numbered within their object (equal lines are
-- interchangeable).
complex_lines AS (
    SELECT
        source_key,
        arrival_hour,
        text AS line,
        row_number() OVER (PARTITION BY source_key ORDER BY text) AS line_no
    FROM line_texts
    WHERE kind = 4
),

-- The pieces of the complex lines, untrimmed, which steps 2 and 3 glue back together.
complex_pieces AS (
    SELECT
        l.source_key,
        l.arrival_hour,
        l.line_no,
        p.piece,
        p.piece_no
    FROM complex_lines AS l
    CROSS JOIN
        UNNEST(split(replace(l.line, '}{', '}' || chr(10) || '{'), chr(10)))
        WITH ORDINALITY AS p (piece, piece_no)
),

-- Step 2: glue pieces whose cut fell inside a string. A text's unescaped quotes are its
-- quotes once its escapes (a backslash and the character after it) are removed: a pattern
-- that starts with a literal character, which the regex engine skips to. Removing every
-- character but the quotes with a pattern was 8x slower. Braces are counted with `replace`.
piece_quotes AS (
    SELECT
        c.source_key,
        c.arrival_hour,
        c.line_no,
        c.piece,
        c.piece_no,
        sum(
            length(regexp_replace(c.piece, '\\.', ''))
            - length(replace(regexp_replace(c.piece, '\\.', ''), '"', ''))
        ) OVER (
            PARTITION BY c.source_key, c.line_no
            ORDER BY c.piece_no
            ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
        ) % 2 AS in_string_after
    FROM complex_pieces AS c
),

piece_groups AS (
    SELECT
        source_key,
        arrival_hour,
        line_no,
        piece,
        piece_no,
        coalesce(
            sum(CASE WHEN in_string_after = 0 THEN 1 ELSE 0 END) OVER (
                PARTITION BY source_key, line_no
                ORDER BY piece_no
                ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
            ),
            0
        ) AS group_no
    FROM piece_quotes
),

groups AS (
    SELECT
        source_key,
        arrival_hour,
        line_no,
        group_no,
        raw_group,
        trimmed,
        trimmed = '' OR (substr(trimmed, 1, 1) = '{' AND try(json_parse(trimmed)) IS NOT NULL)
            AS is_object
    FROM (
        SELECT
            source_key,
            arrival_hour,
            line_no,
            group_no,
            array_join(array_agg(piece ORDER BY piece_no), '') AS raw_group,
            trim(
                BOTH ' ' || chr(9) || chr(13)
                FROM array_join(array_agg(piece ORDER BY piece_no), '')
            ) AS trimmed
        FROM piece_groups
        GROUP BY source_key, arrival_hour, line_no, group_no
    ) AS glued
),

-- Step 3: read a group that is not one object fragment by fragment, tracking the string
-- state and the brace depth outside strings.
fragments AS (
    SELECT
        g.source_key,
        g.arrival_hour,
        g.line_no,
        g.group_no,
        f.fragment,
        f.fragment_no
    FROM groups AS g
    CROSS JOIN
        UNNEST(split(replace(g.raw_group, '}', '}' || chr(10)), chr(10)))
        WITH ORDINALITY AS f (fragment, fragment_no)
    WHERE NOT g.is_object
),

fragment_strings AS (
    SELECT
        source_key,
        arrival_hour,
        line_no,
        group_no,
        fragment,
        fragment_no,
        quotes,
        coalesce(
            sum(quotes) OVER (
                PARTITION BY source_key, line_no, group_no
                ORDER BY fragment_no
                ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
            ),
            0
        ) % 2 AS in_string_before
    FROM (
        SELECT
            source_key,
            arrival_hour,
            line_no,
            group_no,
            fragment,
            fragment_no,
            length(regexp_replace(fragment, '\\.', ''))
            - length(replace(regexp_replace(fragment, '\\.', ''), '"', '')) AS quotes
        FROM fragments
    ) AS counted
),

fragment_depths AS (
    SELECT
        source_key,
        arrival_hour,
        line_no,
        group_no,
        fragment,
        fragment_no,
        sum(length(replace(code, '}', '')) - length(replace(code, '{', ''))) OVER (
            PARTITION BY source_key, line_no, group_no
            ORDER BY fragment_no
            ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
        ) AS depth_after,
        sum(quotes) OVER (
            PARTITION BY source_key, line_no, group_no
            ORDER BY fragment_no
            ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
        ) % 2 AS in_string_after
    FROM (
        SELECT
            source_key,
            arrival_hour,
            line_no,
            group_no,
            fragment,
            fragment_no,
            quotes,
            -- the fragment's text outside strings
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
    ) AS coded
),

fragment_records AS (
    SELECT
        source_key,
        arrival_hour,
        line_no,
        group_no,
        fragment,
        fragment_no,
        coalesce(
            sum(CASE WHEN depth_after = 0 AND in_string_after = 0 THEN 1 ELSE 0 END) OVER (
                PARTITION BY source_key, line_no, group_no
                ORDER BY fragment_no
                ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
            ),
            0
        ) AS part_no
    FROM fragment_depths
),

parts AS (
    SELECT
        source_key,
        arrival_hour,
        line_no,
        group_no,
        part_no,
        trimmed,
        trimmed = '' OR (substr(trimmed, 1, 1) = '{' AND try(json_parse(trimmed)) IS NOT NULL)
            AS is_object
    FROM (
        SELECT
            source_key,
            arrival_hour,
            line_no,
            group_no,
            part_no,
            trim(
                BOTH ' ' || chr(9) || chr(13)
                FROM array_join(array_agg(fragment ORDER BY fragment_no), '')
            ) AS trimmed
        FROM fragment_records
        GROUP BY source_key, arrival_hour, line_no, group_no, part_no
    ) AS glued_parts
),

broken_parts AS (
    SELECT
        source_key,
        arrival_hour,
        line_no,
        group_no,
        min(CASE WHEN NOT is_object THEN part_no END) AS broken_part
    FROM parts
    GROUP BY source_key, arrival_hour, line_no, group_no
),

-- Where each complex line breaks: its first group with a part that is not an object.
line_breaks AS (
    SELECT
        g.source_key,
        g.arrival_hour,
        g.line_no,
        min(CASE WHEN bp.broken_part IS NOT NULL THEN g.group_no END) AS broken_group
    FROM groups AS g
    LEFT JOIN broken_parts AS bp
        ON g.source_key = bp.source_key AND g.line_no = bp.line_no AND g.group_no = bp.group_no
    GROUP BY g.source_key, g.arrival_hour, g.line_no
),

complex_records AS (
    -- whole groups before the break
    SELECT
        g.source_key,
        g.arrival_hour,
        g.trimmed AS record,
        TRUE AS is_object
    FROM groups AS g
    INNER JOIN line_breaks AS b
        ON g.source_key = b.source_key AND g.line_no = b.line_no
    WHERE g.is_object AND g.trimmed <> ''
        AND (b.broken_group IS NULL OR g.group_no < b.broken_group)
    UNION ALL
    -- objects inside a group that is not one object, up to the break
    SELECT
        p.source_key,
        p.arrival_hour,
        p.trimmed AS record,
        TRUE AS is_object
    FROM parts AS p
    INNER JOIN broken_parts AS bp
        ON p.source_key = bp.source_key AND p.line_no = bp.line_no AND p.group_no = bp.group_no
    INNER JOIN line_breaks AS b
        ON p.source_key = b.source_key AND p.line_no = b.line_no
    WHERE p.trimmed <> ''
        AND (b.broken_group IS NULL OR p.group_no <= b.broken_group)
        AND (bp.broken_part IS NULL OR p.part_no < bp.broken_part)
    UNION ALL
    -- from the break to the end of the line: one malformed record
    SELECT
        source_key,
        arrival_hour,
        trim(
            BOTH ' ' || chr(9) || chr(13)
            FROM array_join(array_agg(text ORDER BY group_no, position), '')
        ) AS record,
        FALSE AS is_object
    FROM (
        SELECT
            f.source_key,
            f.arrival_hour,
            f.line_no,
            f.group_no,
            f.fragment_no AS position,
            f.fragment AS text
        FROM fragment_records AS f
        INNER JOIN broken_parts AS bp
            ON f.source_key = bp.source_key AND f.line_no = bp.line_no
            AND f.group_no = bp.group_no
        INNER JOIN line_breaks AS b
            ON f.source_key = b.source_key AND f.line_no = b.line_no
        WHERE f.group_no = b.broken_group AND f.part_no >= bp.broken_part
        UNION ALL
        SELECT
            g.source_key,
            g.arrival_hour,
            g.line_no,
            g.group_no,
            0 AS position,
            g.raw_group AS text
        FROM groups AS g
        INNER JOIN line_breaks AS b
            ON g.source_key = b.source_key AND g.line_no = b.line_no
        WHERE g.group_no > b.broken_group
    ) AS tail
    GROUP BY source_key, arrival_hour, line_no
),

-- Each record parsed once into a map of its fields (NULL when it is not one readable object,
-- or repeats a key). A piece of a simple line was checked in `checked_lines`, so only the map
-- is built.
records AS (
    SELECT
        source_key,
        arrival_hour,
        text AS record,
        CASE WHEN kind = 1 THEN CAST(json_parse(text) AS MAP(VARCHAR, JSON)) END AS doc,
        kind = 5 AS unreadable
    FROM line_texts
    WHERE kind IN (1, 2, 5)
    UNION ALL
    SELECT
        source_key,
        arrival_hour,
        record,
        CASE WHEN is_object THEN try(CAST(json_parse(record) AS MAP(VARCHAR, JSON))) END AS doc,
        FALSE AS unreadable
    FROM complex_records
),

-- Each field looked up once, then read as its JSON text (its first character tells its type)
-- and as a scalar.
field_values AS (
    SELECT
        source_key,
        arrival_hour,
        record,
        unreadable,
        doc IS NOT NULL AS is_object,
        element_at(doc, 'bookId') AS book_id_value,
        element_at(doc, 'userId') AS user_id_value,
        element_at(doc, 'purchaseTimestamp') AS timestamp_value,
        element_at(doc, 'purchaseId') AS purchase_id_value,
        element_at(doc, 'title') AS title_value,
        element_at(doc, 'author') AS author_value,
        element_at(doc, 'genre') AS genre_value,
        element_at(doc, 'userCountry') AS country_value,
        element_at(doc, 'userAge') AS age_value
    FROM records
),

fields AS (
    SELECT
        source_key,
        arrival_hour,
        record,
        unreadable,
        is_object,
        json_format(book_id_value) AS book_id_json,
        json_extract_scalar(book_id_value, '$') AS book_id_text,
        json_format(user_id_value) AS user_id_json,
        json_extract_scalar(user_id_value, '$') AS user_id_text,
        json_format(timestamp_value) AS timestamp_json,
        try_cast(json_extract_scalar(timestamp_value, '$') AS DOUBLE) AS timestamp_number,
        json_format(purchase_id_value) AS purchase_id_json,
        json_extract_scalar(purchase_id_value, '$') AS purchase_id_text,
        json_format(title_value) AS title_json,
        json_extract_scalar(title_value, '$') AS title_text,
        json_format(author_value) AS author_json,
        json_extract_scalar(author_value, '$') AS author_text,
        json_format(genre_value) AS genre_json,
        json_extract_scalar(genre_value, '$') AS genre_text,
        json_format(country_value) AS country_json,
        json_extract_scalar(country_value, '$') AS country_text,
        json_format(age_value) AS age_json,
        try_cast(json_extract_scalar(age_value, '$') AS DOUBLE) AS age_number
    FROM field_values
),

typed AS (
    SELECT
        source_key,
        arrival_hour,
        record,
        CASE
            WHEN unreadable THEN 'unreadable_object'
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
            WHEN timestamp_number >= 1e11 THEN floor(timestamp_number + 0.5)
            ELSE floor(timestamp_number * 1000 + 0.5)
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
                AND age_number = floor(age_number)
                AND age_number BETWEEN 0 AND 120
                THEN CAST(age_number AS INTEGER)
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
                OR timestamp_ms >= to_unixtime(arrival_hour) * 1000 + 3600000
                THEN 'bad_timestamp'
            WHEN floor(timestamp_ms / 86400000) < floor(to_unixtime(arrival_hour) / 86400) - 1
                THEN 'too_late'
        END AS reason
    FROM typed
)

SELECT
    source_key,
    arrival_hour,
    reason,
    CAST(
        CASE
            WHEN reason IS NULL
                THEN date_add(
                    'day', CAST(floor(timestamp_ms / 86400000) AS BIGINT), DATE '1970-01-01'
                )
            ELSE CAST(arrival_hour AS DATE)
        END AS DATE
    ) AS dt,
    -- A record of a simple line is the piece as cut; it is trimmed here, for the few kept.
    CASE
        WHEN reason IS NOT NULL
            THEN substr(trim(BOTH ' ' || chr(9) || chr(13) FROM record), 1, 16384)
    END AS record,
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
                CAST(length(CAST(user_age AS VARCHAR)) AS VARCHAR)
                || ':' || CAST(user_age AS VARCHAR),
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
    -- Days, then the milliseconds of the day: Trino (Athena) adds at most 2^31 of a unit at a
    -- time ("integer overflow"), and keeps the epoch literal's precision, so it has its
    -- milliseconds (a timestamp(0) would drop them).
    CASE
        WHEN reason IS NULL
            THEN date_add(
                'millisecond',
                CAST(timestamp_ms - floor(timestamp_ms / 86400000) * 86400000 AS BIGINT),
                date_add(
                    'day',
                    CAST(floor(timestamp_ms / 86400000) AS BIGINT),
                    TIMESTAMP '1970-01-01 00:00:00.000'
                )
            )
    END AS purchased_at
FROM classified
