-- kpi_top_books_daily: the ten most purchased books of one purchase day (ties: book_id),
-- with each book's most frequent non-null title and author that day (ties: the smallest).
-- Parameters: :dt (DATE).
--
-- One read of the day's purchases: each CTE is read once, by the next. Athena plans a CTE
-- again wherever it is read, and this query read the day three times when the titles and the
-- authors were counted apart from the books.
WITH variants AS (
    -- purchases per book, title and author: a few rows per book
    SELECT
        book_id,
        title,
        author,
        count(*) AS purchases
    FROM purchases
    WHERE dt = :dt
    GROUP BY book_id, title, author
),

counted AS (
    SELECT
        book_id,
        title,
        author,
        CAST(sum(purchases) OVER (PARTITION BY book_id) AS BIGINT) AS book_purchases,
        sum(purchases) OVER (PARTITION BY book_id, title) AS title_purchases,
        sum(purchases) OVER (PARTITION BY book_id, author) AS author_purchases
    FROM variants
),

books AS (
    -- one row per book, with its chosen title and author (NULL only when it has none)
    SELECT
        book_id,
        book_purchases,
        first_value(title) OVER (
            PARTITION BY book_id
            ORDER BY CASE WHEN title IS NULL THEN 1 ELSE 0 END, title_purchases DESC, title ASC
        ) AS title,
        first_value(author) OVER (
            PARTITION BY book_id
            ORDER BY CASE WHEN author IS NULL THEN 1 ELSE 0 END, author_purchases DESC, author ASC
        ) AS author,
        row_number() OVER (PARTITION BY book_id ORDER BY title, author) AS book_row
    FROM counted
),

ranked AS (
    SELECT
        book_id,
        title,
        author,
        book_purchases,
        row_number() OVER (ORDER BY book_purchases DESC, book_id ASC) AS rank
    FROM books
    WHERE book_row = 1
)

SELECT
    :dt AS dt,
    CAST(rank AS INTEGER) AS rank,
    book_id,
    title,
    author,
    book_purchases AS purchases
FROM ranked
WHERE rank <= 10
