-- kpi_top_books_daily: the ten most purchased books of one purchase day (ties: book_id),
-- with each book's most frequent non-null title and author that day (ties: the smallest).
-- Parameters: :dt (DATE).
WITH day_purchases AS (
    SELECT
        book_id,
        title,
        author
    FROM purchases
    WHERE dt = :dt
),

ranked_books AS (
    SELECT
        book_id,
        count(*) AS purchases,
        row_number() OVER (ORDER BY count(*) DESC, book_id ASC) AS rank
    FROM day_purchases
    GROUP BY book_id
),

top_books AS (
    SELECT
        book_id,
        purchases,
        rank
    FROM ranked_books
    WHERE rank <= 10
),

titles AS (
    SELECT
        book_id,
        title,
        row_number() OVER (PARTITION BY book_id ORDER BY count(*) DESC, title ASC) AS choice
    FROM day_purchases
    WHERE title IS NOT NULL AND book_id IN (SELECT book_id FROM top_books)
    GROUP BY book_id, title
),

authors AS (
    SELECT
        book_id,
        author,
        row_number() OVER (PARTITION BY book_id ORDER BY count(*) DESC, author ASC) AS choice
    FROM day_purchases
    WHERE author IS NOT NULL AND book_id IN (SELECT book_id FROM top_books)
    GROUP BY book_id, author
)

SELECT
    :dt AS dt,
    CAST(b.rank AS INTEGER) AS rank,
    b.book_id,
    t.title,
    a.author,
    b.purchases
FROM top_books AS b
LEFT JOIN titles AS t
    ON b.book_id = t.book_id AND t.choice = 1
LEFT JOIN authors AS a
    ON b.book_id = a.book_id AND a.choice = 1
