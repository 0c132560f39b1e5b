"""What each table's asset checks assert, as SQL in Athena's dialect and in words.

`checks.py` runs checks and reports them; this module says, table by table, what holds for a
partition that is complete, unique and possible (docs/data-rules.md, "Checks"): one query or two
per table and run, grouped by partition through a VALUES list of the run's partitions, and on a
failure one more that names the offending keys. The SQL is kept here, not in `sql/`, because it
is templated per table (its key columns, its validity predicate) and `sql/` holds one SELECT per
table built.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dagster import MetadataValue

from purchase_pipeline.defs.checks import (
    WARN,
    Check,
    Outcome,
    Outcomes,
    TableChecks,
    attach_offending_rows,
    attach_repeated_keys,
    complete,
    int_metadata,
    listed,
    offending_rows,
    per_day,
    rows_by_key,
    wanted_values,
)
from purchase_pipeline.defs.kept_counts import (
    LANDING_RECORDS,
    REASONS,
    day_purchases,
    landed_per_day,
)
from purchase_pipeline.defs.partitions import day_of, hour_of, hour_value, hours_of_days
from purchase_pipeline.identifiers import validate_identifier, validate_prefix
from purchase_pipeline.layout import hour_prefix, parse_landing_key
from purchase_pipeline.resources.catalog import Catalog
from purchase_pipeline.resources.engine import QueryEngine, Source, TableSource
from purchase_pipeline.resources.object_store import ObjectStore
from purchase_pipeline.settings import env

REJECTED_RATE_SETTING = "PURCHASES_REJECTED_RATE_WARN"

AGE_BANDS = ("<18", "18-24", "25-34", "35-44", "45-54", "55-64", "65+", "unknown")


def _in_list(values: Sequence[str]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


# --- landing/purchases: the staged records of an arrival hour --------------------------------

# True for a staged record classified as docs/data-rules.md says.
LANDING_VALID = f"""
source_key IS NOT NULL
AND CASE
    WHEN reason IS NULL THEN
        purchase_id IS NOT NULL AND book_id IS NOT NULL AND user_id IS NOT NULL
        AND genre IS NOT NULL AND user_country IS NOT NULL AND age_band IS NOT NULL
        AND (user_age IS NULL OR user_age BETWEEN 0 AND 120)
        AND purchased_at >= TIMESTAMP '2000-01-01 00:00:00'
        AND purchased_at < arrival_hour + INTERVAL '1' HOUR
        AND dt = CAST(purchased_at AS DATE)
        AND dt >= date_add('day', -1, CAST(arrival_hour AS DATE))
    ELSE
        reason IN {_in_list(REASONS)}
        AND dt = CAST(arrival_hour AS DATE)
        AND record IS NOT NULL
END
"""

LANDING_SQL = """
WITH staged AS (
    SELECT
        arrival_hour,
        count(*) AS records,
        count(DISTINCT source_key) AS objects,
        count_if(NOT coalesce({valid}, FALSE)) AS invalid
    FROM landing_records
    GROUP BY arrival_hour
)
SELECT
    w.p,
    coalesce(s.records, 0) AS records,
    coalesce(s.objects, 0) AS objects,
    coalesce(s.invalid, 0) AS invalid
FROM {wanted}
LEFT JOIN staged AS s ON s.arrival_hour = w.p
"""

LANDING_KEYS_SQL = """
SELECT DISTINCT date_format(arrival_hour, '%Y-%m-%d-%H') AS hour, source_key
FROM landing_records
"""

LANDING_INVALID_SQL = """
SELECT date_format(arrival_hour, '%Y-%m-%d-%H') AS hour, source_key, reason, dt
FROM landing_records
WHERE NOT coalesce({valid}, FALSE)
ORDER BY 1, 2
"""

LANDING_CHECKS = (
    Check(
        "objects_have_records",
        "Nothing that landed is missing: every landing object of the hour with content (the "
        "count the hour's build listed, kept with the partition in the catalog) has at least "
        "one record in landing_records, a purchase or a rejection (an unreadable object is one "
        "unreadable_object rejection), and no other object has any. A failure lists the "
        "objects without records.",
    ),
    Check(
        "valid_records",
        "Every staged record is classified as docs/data-rules.md says: an accepted record has "
        "its purchase_id and contract fields, user_age null or 0..120, a purchase time from "
        "2000-01-01 to the end of its arrival hour, and dt = its purchase day, at most one day "
        "before arrival; a rejected record has a known reason, its text, and dt = its arrival "
        "day. A failure lists offending records (object key, reason, dt).",
    ),
)


def evaluate_landing(
    store: ObjectStore, catalog: Catalog, engine: QueryEngine, keys: list[str]
) -> Outcomes:
    values = {key: hour_value(hour_of(key)) for key in keys}
    key_of = {hour_of(key).replace(tzinfo=None): key for key in keys}
    wanted, params = wanted_values([hour_of(key) for key in keys])
    sources: dict[str, Source] = {
        LANDING_RECORDS: TableSource(LANDING_RECORDS, list(values.values()))
    }
    numbers = rows_by_key(
        engine.query(
            store, catalog, LANDING_SQL.format(wanted=wanted, valid=LANDING_VALID), params, sources
        ),
        key_of,
    )
    outcomes: Outcomes = {"objects_have_records": {}, "valid_records": {}}
    missing_objects: list[str] = []
    staged = catalog.get_partitions(LANDING_RECORDS, [values[key] for key in numbers])
    for key, n in numbers.items():
        partition = staged.get(values[key])
        with_content = partition.stats.get("nonempty_objects") if partition else None
        metadata = {"records": n["records"], "objects_with_records": n["objects"]}
        if partition is None:
            outcome = Outcome(False, "Not evaluated: the hour was never staged.", severity=WARN)
        elif with_content is None:
            outcome = Outcome(
                False,
                "Not evaluated: the hour was staged before objects with content were counted; "
                "materialize it again.",
                int_metadata(metadata),
                WARN,
            )
        else:
            metadata["objects_with_content"] = int(with_content)
            passed = n["objects"] == with_content
            if not passed:
                missing_objects.append(key)
            outcome = Outcome(
                passed,
                f"{n['objects']} of {with_content} objects with content have records "
                f"({n['records']} records)",
                int_metadata(metadata),
            )
        outcomes["objects_have_records"][key] = outcome
        outcomes["valid_records"][key] = Outcome(
            n["invalid"] == 0,
            f"{n['invalid']} of {n['records']} records are not classified as the rules say",
            int_metadata({"records": n["records"], "invalid_records": n["invalid"]}),
        )
    if missing_objects:
        _list_objects_without_records(
            store, catalog, engine, [values[k] for k in missing_objects], outcomes, missing_objects
        )
    invalid = [key for key, n in numbers.items() if n["invalid"]]
    if invalid:
        rows = offending_rows(
            store,
            catalog,
            engine,
            LANDING_INVALID_SQL.format(valid=LANDING_VALID),
            {LANDING_RECORDS: TableSource(LANDING_RECORDS, [values[k] for k in invalid])},
        )
        for key in invalid:
            outcomes["valid_records"][key].metadata["offending_records"] = listed(
                rows.get(values[key], [])
            )
    return complete(outcomes, [c.name for c in LANDING_CHECKS], keys)


def _list_objects_without_records(
    store: ObjectStore,
    catalog: Catalog,
    engine: QueryEngine,
    values: list[str],
    outcomes: Outcomes,
    keys: list[str],
) -> None:
    """Name the objects of failed hours with no records (listed again: a few per hour)."""
    staged = offending_rows(
        store,
        catalog,
        engine,
        LANDING_KEYS_SQL,
        {LANDING_RECORDS: TableSource(LANDING_RECORDS, values)},
        max_rows=None,
    )
    raw_prefix = validate_prefix(env("PURCHASES_RAW_PREFIX"))
    for key, value in zip(keys, values, strict=True):
        found = {row[0] for row in staged.get(value, [])}
        landed = [
            o.key
            for o in store.list_objects(hour_prefix(raw_prefix, hour_of(key)))
            if o.size > 0 and parse_landing_key(o.key, raw_prefix) is not None
        ]
        outcome = outcomes["objects_have_records"][key]
        outcome.metadata["objects_without_records"] = listed([k for k in landed if k not in found])
        outcome.metadata["records_of_unlisted_objects"] = listed(sorted(found - set(landed)))


landing_checks = TableChecks(checks=LANDING_CHECKS, evaluate=evaluate_landing)


# --- warehouse/purchases ----------------------------------------------------------------------

# Accepted records of each purchase day, read exactly as sql/purchases.sql reads them: arrival
# hours of the day and the next day, dt = the day.
PURCHASES_LANDED_SQL = """
WITH accepted AS (
    SELECT
        dt,
        count(*) AS accepted,
        count(DISTINCT purchase_id) AS purchase_ids
    FROM landing_records
    WHERE
        reason IS NULL
        AND arrival_hour >= CAST(dt AS TIMESTAMP)
        AND arrival_hour < CAST(date_add('day', 2, dt) AS TIMESTAMP)
    GROUP BY dt
)
SELECT
    w.p,
    coalesce(a.accepted, 0) AS accepted,
    coalesce(a.purchase_ids, 0) AS purchase_ids
FROM {wanted}
LEFT JOIN accepted AS a ON a.dt = w.p
"""

PURCHASE_VALID = f"""
purchase_id IS NOT NULL AND source_key IS NOT NULL
AND book_id <> '' AND user_id <> '' AND genre <> '' AND user_country <> ''
AND purchased_at IS NOT NULL AND CAST(purchased_at AS DATE) = dt
AND (user_age IS NULL OR user_age BETWEEN 0 AND 120)
AND age_band = CASE
    WHEN user_age IS NULL THEN 'unknown'
    WHEN user_age < 18 THEN '<18'
    WHEN user_age < 25 THEN '18-24'
    WHEN user_age < 35 THEN '25-34'
    WHEN user_age < 45 THEN '35-44'
    WHEN user_age < 55 THEN '45-54'
    WHEN user_age < 65 THEN '55-64'
    ELSE '65+'
END
AND age_band IN {_in_list(AGE_BANDS)}
"""

PURCHASES_SQL = """
WITH profile AS (
    SELECT
        dt,
        count(*) AS purchase_rows,
        count(DISTINCT purchase_id) AS purchase_ids,
        count_if(purchase_id IS NULL) AS null_ids,
        count_if(NOT coalesce({valid}, FALSE)) AS invalid
    FROM purchases
    GROUP BY dt
)
SELECT
    w.p,
    coalesce(p.purchase_rows, 0) AS purchase_rows,
    coalesce(p.purchase_ids, 0) AS purchase_ids,
    coalesce(p.null_ids, 0) AS null_ids,
    coalesce(p.invalid, 0) AS invalid
FROM {wanted}
LEFT JOIN profile AS p ON p.dt = w.p
"""

PURCHASES_CHECKS = (
    Check(
        "not_empty",
        "Has rows for every purchase day whose landing hours (the day's and the next day's) "
        "hold accepted records.",
        reads_inputs=True,
    ),
    Check(
        "purchase_id_unique",
        "No purchase_id is null or appears twice in a day: duplicate deliveries were dropped "
        "(docs/data-rules.md, De-duplication). Blocking: KPIs built on repeated purchases would "
        "count them twice. A failure lists the repeated ids.",
        blocking=True,
    ),
    Check(
        "valid_values",
        "Every row is a whole purchase of its day: purchase_id, source_key and non-empty "
        "book_id, user_id, genre and user_country; purchased_at on the partition's day; "
        "user_age null or 0..120; age_band the band of user_age. A failure lists offending "
        "purchase_ids.",
    ),
    Check(
        "accounting_identity",
        "Every accepted record that landed for the day is one row or one duplicate dropped: "
        "accepted records of landing_records with dt = D (arrival hours of D and D+1) = rows + "
        "duplicates dropped, the duplicates counted in landing_records as accepted records minus "
        "distinct purchase_ids. With purchases_rejected's identity this is SPEC.md's landed = "
        "purchases + duplicates dropped + rejected, day by day (docs/data-rules.md, Checks). "
        "Blocking: the run's KPI steps do not build on a day that does not add up.",
        blocking=True,
        reads_inputs=True,
    ),
)


def evaluate_purchases(
    store: ObjectStore, catalog: Catalog, engine: QueryEngine, keys: list[str]
) -> Outcomes:
    first, last = min(day_of(k) for k in keys), max(day_of(k) for k in keys)
    hours = hours_of_days(first, (last - first).days + 2)
    landed = per_day(
        store,
        catalog,
        engine,
        PURCHASES_LANDED_SQL,
        keys,
        {LANDING_RECORDS: TableSource(LANDING_RECORDS, hours)},
    )
    table: dict[str, Source] = {"purchases": TableSource("purchases", list(keys))}
    built = per_day(store, catalog, engine, PURCHASES_SQL, keys, table, valid=PURCHASE_VALID)
    outcomes: Outcomes = {c.name: {} for c in PURCHASES_CHECKS}
    for key in keys:
        if key not in landed or key not in built:
            continue
        accepted, ids = landed[key]["accepted"], landed[key]["purchase_ids"]
        b = built[key]
        rows = b["purchase_rows"]
        outcomes["not_empty"][key] = Outcome(
            rows > 0 or accepted == 0,
            f"{rows} rows; {accepted} accepted records landed for the day",
            int_metadata({"rows": rows, "landed_accepted": accepted}),
        )
        repeated = rows - b["purchase_ids"] + b["null_ids"]
        outcomes["purchase_id_unique"][key] = Outcome(
            repeated == 0,
            f"{b['purchase_ids']} distinct purchase_ids in {rows} rows, {b['null_ids']} null",
            int_metadata(
                {
                    "rows": rows,
                    "distinct_purchase_ids": b["purchase_ids"],
                    "null_ids": b["null_ids"],
                }
            ),
        )
        outcomes["valid_values"][key] = Outcome(
            b["invalid"] == 0,
            f"{b['invalid']} of {rows} rows are not a whole purchase of the day",
            int_metadata({"rows": rows, "invalid_rows": b["invalid"]}),
        )
        duplicates = accepted - ids
        difference = accepted - (rows + duplicates)
        outcomes["accounting_identity"][key] = Outcome(
            difference == 0,
            f"{accepted} accepted records landed {'=' if difference == 0 else '!='} {rows} rows "
            f"+ {duplicates} duplicates dropped"
            + ("" if difference == 0 else f" ({difference:+d} records unaccounted for)"),
            int_metadata(
                {
                    "landed_accepted": accepted,
                    "rows": rows,
                    "duplicates_dropped": duplicates,
                    "unaccounted": difference,
                }
            ),
        )
    attach_repeated_keys(
        store, catalog, engine, "purchases", ("purchase_id",), outcomes, "purchase_id_unique"
    )
    attach_offending_rows(
        store, catalog, engine, "purchases", PURCHASE_VALID, "purchase_id, user_age, age_band",
        outcomes, "valid_values",
    )  # fmt: skip
    return complete(outcomes, [c.name for c in PURCHASES_CHECKS], keys)


def purchases_inputs(key: str) -> list[tuple[str, str]]:
    return [(LANDING_RECORDS, hour) for hour in hours_of_days(day_of(key), 2)]


purchases_checks = TableChecks(
    checks=PURCHASES_CHECKS, evaluate=evaluate_purchases, inputs=purchases_inputs
)


# --- warehouse/purchases_rejected ----------------------------------------------------------

REJECTED_VALID = f"""
source_key IS NOT NULL AND reason IN {_in_list(REASONS)}
AND record IS NOT NULL AND length(record) <= 16384
"""

REJECTED_SQL = """
WITH profile AS (
    SELECT
        dt,
        count(*) AS rejected_rows,
        count_if(NOT coalesce({valid}, FALSE)) AS invalid
    FROM purchases_rejected
    GROUP BY dt
)
SELECT
    w.p,
    coalesce(p.rejected_rows, 0) AS rejected_rows,
    coalesce(p.invalid, 0) AS invalid
FROM {wanted}
LEFT JOIN profile AS p ON p.dt = w.p
"""

REJECTED_CHECKS = (
    Check(
        "not_empty",
        "Has rows for every arrival day on which rejected records landed.",
        reads_inputs=True,
    ),
    Check(
        "valid_values",
        "Every row names its landing object, a known reason "
        f"({', '.join(REASONS)}) and the record's text, at most 16,384 characters. A failure "
        "lists offending rows.",
    ),
    Check(
        "rejected_rate",
        "The day's rejected records are at most a share PURCHASES_REJECTED_RATE_WARN (default "
        "0.05) of all records that arrived that day: more means the producer or Firehose is "
        "sending broken data. A warning: the rejections are kept, nothing is lost.",
        severity=WARN,
        reads_inputs=True,
    ),
    Check(
        "accounting_identity",
        "Every record that arrived on the day and was rejected is one row: rejected records of "
        "landing_records in the day's arrival hours = rows. With purchases' identity this is "
        "SPEC.md's landed = purchases + duplicates dropped + rejected, day by day "
        "(docs/data-rules.md, Checks). Blocking: a failure fails the run.",
        blocking=True,
        reads_inputs=True,
    ),
)


def rejected_rate_threshold() -> float:
    """PURCHASES_REJECTED_RATE_WARN: a share of a day's arrived records, 0..1."""
    text = env(REJECTED_RATE_SETTING)
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 <= value <= 1.0:
        raise ValueError(
            f"{REJECTED_RATE_SETTING} must be a number from 0 to 1 (a share of the records that "
            f"arrived on a day), got {text!r}"
        )
    return value


# A bad value is a one-line error when the code location loads, not a surprise mid-run.
rejected_rate_threshold()


def evaluate_rejected(
    store: ObjectStore, catalog: Catalog, engine: QueryEngine, keys: list[str]
) -> Outcomes:
    threshold = rejected_rate_threshold()
    landed = landed_per_day(store, catalog, engine, keys)
    table: dict[str, Source] = {"purchases_rejected": TableSource("purchases_rejected", list(keys))}
    built = per_day(store, catalog, engine, REJECTED_SQL, keys, table, valid=REJECTED_VALID)
    outcomes: Outcomes = {c.name: {} for c in REJECTED_CHECKS}
    for key in keys:
        if key not in landed or key not in built:
            continue
        arrived, rejected = landed[key]["arrived"], landed[key]["rejected"]
        rows, invalid = built[key]["rejected_rows"], built[key]["invalid"]
        outcomes["not_empty"][key] = Outcome(
            rows > 0 or rejected == 0,
            f"{rows} rows; {rejected} rejected records arrived on the day",
            int_metadata({"rows": rows, "landed_rejected": rejected}),
        )
        outcomes["valid_values"][key] = Outcome(
            invalid == 0,
            f"{invalid} of {rows} rows have no object key, an unknown reason or no text",
            int_metadata({"rows": rows, "invalid_rows": invalid}),
        )
        rate = rows / arrived if arrived else 0.0
        outcomes["rejected_rate"][key] = Outcome(
            rate <= threshold,
            f"{rows} of {arrived} records that arrived were rejected: {rate:.2%} "
            f"({'at most' if rate <= threshold else 'above'} {threshold:.2%})",
            {
                **int_metadata({"rejected": rows, "arrived": arrived}),
                "rejected_rate": MetadataValue.float(rate),
                "threshold": MetadataValue.float(threshold),
            },
        )
        difference = rejected - rows
        outcomes["accounting_identity"][key] = Outcome(
            difference == 0,
            f"{rejected} rejected records arrived {'=' if difference == 0 else '!='} {rows} rows"
            + ("" if difference == 0 else f" ({difference:+d} records unaccounted for)"),
            int_metadata({"landed_rejected": rejected, "rows": rows, "unaccounted": difference}),
        )
    attach_offending_rows(
        store, catalog, engine, "purchases_rejected", REJECTED_VALID,
        "source_key, reason, substr(record, 1, 80) AS record", outcomes, "valid_values",
    )  # fmt: skip
    return complete(outcomes, [c.name for c in REJECTED_CHECKS], keys)


def rejected_inputs(key: str) -> list[tuple[str, str]]:
    return [(LANDING_RECORDS, hour) for hour in hours_of_days(day_of(key), 1)]


rejected_checks = TableChecks(
    checks=REJECTED_CHECKS, evaluate=evaluate_rejected, inputs=rejected_inputs
)


# --- kpi/<name> -----------------------------------------------------------------------------


@dataclass(frozen=True)
class KpiRules:
    """What a KPI table's rows must satisfy, in SQL and in words."""

    unique: tuple[str, ...]  # columns unique within a day
    valid: str  # Athena predicate, true for a row whose values are possible
    asserts: str  # the same in words
    totals: str  # how the rows add up to the day's purchases: day | groups | top
    window: str = ""  # extra columns the predicate reads (window functions)
    buyers: str = "buyers"
    books: str = "CAST(NULL AS BIGINT)"
    shown: str = "purchases, buyers"  # columns listed for an offending row


def _group(column: str, extra: str = "", extra_words: str = "") -> KpiRules:
    return KpiRules(
        unique=(column,),
        valid=f"purchases >= 1 AND buyers >= 1 AND buyers <= purchases{extra}",
        asserts=f"purchases >= 1, 1 <= buyers <= purchases{extra_words}",
        totals="groups",
        shown=f"CAST({column} AS VARCHAR) AS {column}, purchases, buyers",
    )


KPI_RULES: dict[str, KpiRules] = {
    "daily_summary": KpiRules(
        unique=("dt",),
        valid=(
            "purchases >= 0 AND buyers >= 0 AND books >= 0 AND buyers <= purchases "
            "AND books <= purchases AND (buyers = 0) = (purchases = 0) "
            "AND (books = 0) = (purchases = 0)"
        ),
        asserts=(
            "purchases, buyers and books >= 0, buyers and books <= purchases, and buyers and "
            "books zero exactly when purchases are"
        ),
        totals="day",
        books="books",
        shown="purchases, buyers, books",
    ),
    "genre_daily": _group("genre", " AND genre <> ''", ", genre not empty"),
    "country_daily": _group("user_country", " AND user_country <> ''", ", country not empty"),
    "age_band_daily": _group(
        "age_band", f" AND age_band IN {_in_list(AGE_BANDS)}", ", age_band one of the bands"
    ),
    "hourly_purchases": _group("hour", " AND hour BETWEEN 0 AND 23", ", hour 0..23"),
    "top_books_daily": KpiRules(
        unique=("rank", "book_id"),
        valid=(
            "rank BETWEEN 1 AND 10 AND rank = place AND purchases >= 1 AND book_id <> '' "
            "AND (previous_purchases IS NULL OR purchases < previous_purchases "
            "OR (purchases = previous_purchases AND book_id > previous_book_id))"
        ),
        asserts=(
            "ranks 1..10 with no gap, purchases >= 1, and each rank after the one before by "
            "purchases descending, then book_id ascending"
        ),
        totals="top",
        window=(
            ", row_number() OVER (PARTITION BY dt ORDER BY rank) AS place"
            ", lag(purchases) OVER (PARTITION BY dt ORDER BY rank) AS previous_purchases"
            ", lag(book_id) OVER (PARTITION BY dt ORDER BY rank) AS previous_book_id"
        ),
        buyers="CAST(NULL AS BIGINT)",
        shown="rank, book_id, purchases",
    ),
}

KPI_SQL = """
WITH checked AS (
    SELECT *{copies}{window}
    FROM {table}
),
profile AS (
    SELECT
        dt,
        count(*) AS kpi_rows,
        count_if({repeated}) AS repeated_rows,
        count_if(NOT coalesce({valid}, FALSE)) AS invalid_rows,
        sum(purchases) AS purchases,
        max({buyers}) AS max_buyers,
        sum({buyers}) AS sum_buyers,
        max({books}) AS books
    FROM checked
    GROUP BY dt
)
SELECT
    w.p,
    coalesce(p.kpi_rows, 0) AS kpi_rows,
    coalesce(p.repeated_rows, 0) AS repeated_rows,
    coalesce(p.invalid_rows, 0) AS invalid_rows,
    p.purchases,
    p.max_buyers,
    p.sum_buyers,
    p.books
FROM {wanted}
LEFT JOIN profile AS p ON p.dt = w.p
"""

_TOTALS_WORDS = {
    "day": "its purchases, buyers and books equal the day's purchases rows, distinct "
    "user_ids and distinct book_ids",
    "groups": "its purchases add up to the day's purchases rows (each purchase is in exactly "
    "one group), no group has more buyers than the day, and together the groups have at "
    "least the day's buyers",
    "top": "it holds min(10, the day's distinct books) rows, whose purchases add up to at "
    "most the day's purchases",
}


def kpi_table_checks(name: str) -> TableChecks:
    """The checks of `kpi/<name>` (table kpi_<name>)."""
    rules = KPI_RULES[name]
    table = f"kpi_{validate_identifier(name)}"
    keys_words = (
        "One row per day."
        if rules.unique == ("dt",)
        else " and ".join(rules.unique) + " unique and not null within a day."
    )
    checks = (
        Check(
            "not_empty",
            "One row for every built day, zeros on a day without purchases."
            if rules.totals == "day"
            else "Has rows for every day whose purchases partition has rows.",
            reads_inputs=True,
        ),
        Check("keys_unique", f"{keys_words} A failure lists the repeated keys."),
        Check(
            "valid_counts",
            f"No negative or impossible values: {rules.asserts}. A failure lists offending rows.",
        ),
        Check(
            "matches_purchases",
            f"The table agrees with the day's purchases partition: {_TOTALS_WORDS[rules.totals]}.",
            reads_inputs=True,
        ),
    )

    def evaluate(
        store: ObjectStore, catalog: Catalog, engine: QueryEngine, keys: list[str]
    ) -> Outcomes:
        purchases = day_purchases(store, catalog, engine, keys)
        copies = "".join(
            f", count(*) OVER (PARTITION BY dt, {validate_identifier(c)}) AS copies_{i}"
            for i, c in enumerate(rules.unique)
        )
        repeated = " OR ".join(f"copies_{i} > 1 OR {c} IS NULL" for i, c in enumerate(rules.unique))
        built = per_day(
            store,
            catalog,
            engine,
            KPI_SQL,
            keys,
            {table: TableSource(table, list(keys))},
            table=table,
            copies=copies,
            window=rules.window,
            repeated=repeated,
            valid=rules.valid,
            buyers=rules.buyers,
            books=rules.books,
        )
        outcomes: Outcomes = {c.name: {} for c in checks}
        for key in keys:
            if key in purchases and key in built:
                _kpi_outcomes(rules, key, purchases[key], built[key], outcomes)
        attach_repeated_keys(store, catalog, engine, table, rules.unique, outcomes, "keys_unique")
        attach_offending_rows(
            store, catalog, engine, table, rules.valid, rules.shown, outcomes, "valid_counts",
            window=rules.window,
        )  # fmt: skip
        return complete(outcomes, [c.name for c in checks], keys)

    return TableChecks(checks=checks, evaluate=evaluate, inputs=lambda key: [("purchases", key)])


def _kpi_outcomes(
    rules: KpiRules, key: str, day: dict[str, Any], kpi: dict[str, Any], outcomes: Outcomes
) -> None:
    rows = kpi["kpi_rows"]
    purchases, buyers, books = day["purchases"], day["buyers"], day["books"]
    summed = kpi["purchases"] or 0
    numbers = int_metadata({"rows": rows, "day_purchases": purchases})
    outcomes["not_empty"][key] = Outcome(
        rows > 0 if rules.totals == "day" else rows > 0 or purchases == 0,
        f"{rows} rows; the day has {purchases} purchases",
        numbers,
    )
    outcomes["keys_unique"][key] = Outcome(
        kpi["repeated_rows"] == 0,
        f"{kpi['repeated_rows']} of {rows} rows repeat a key or have none",
        int_metadata({"rows": rows, "rows_with_repeated_or_null_key": kpi["repeated_rows"]}),
    )
    outcomes["valid_counts"][key] = Outcome(
        kpi["invalid_rows"] == 0,
        f"{kpi['invalid_rows']} of {rows} rows have impossible values",
        int_metadata({"rows": rows, "invalid_rows": kpi["invalid_rows"]}),
    )
    if rules.totals == "day":
        found = (summed, kpi["max_buyers"], kpi["books"])
        passed = rows == 1 and found == (purchases, buyers, books)
        said = f"purchases, buyers, books {found} vs the day's {(purchases, buyers, books)}"
    elif rules.totals == "groups":
        most, total = kpi["max_buyers"] or 0, kpi["sum_buyers"] or 0
        passed = summed == purchases and most <= buyers and (total >= buyers or rows == 0)
        said = (
            f"groups sum to {summed} purchases (day: {purchases}); buyers per group at most "
            f"{most}, summed {total} (day: {buyers})"
        )
    else:
        passed = rows == min(10, books) and summed <= purchases
        said = (
            f"{rows} rows for {books} distinct books (want {min(10, books)}); "
            f"{summed} purchases of {purchases}"
        )
    outcomes["matches_purchases"][key] = Outcome(
        passed,
        said,
        int_metadata(
            {
                "rows": rows,
                "kpi_purchases": summed,
                "day_purchases": purchases,
                "day_buyers": buyers,
                "day_books": books,
            }
        ),
    )
