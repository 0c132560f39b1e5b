"""`purchase-pipeline`: simulate purchases, materialize days through Dagster, query tables.

Every command reads the same settings as the code location (PURCHASES_* variables), so what
`simulate` lands is what `materialize` builds and what `sql` and the Dagster UI show.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import logging
import os
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

from purchase_pipeline.identifiers import parse_day
from purchase_pipeline.settings import Settings

log = logging.getLogger("purchase_pipeline.cli")


def _out(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


def _err(text: str) -> None:
    sys.stderr.write(text + "\n")


class CliError(Exception):
    """An error reported to the user as one line, and a hint line when one helps."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


# What to try next, by what a one-line error says.
HINTS = (
    (
        "does not exist",
        "build the tables first: purchase-pipeline materialize "
        "--last-days 7 (after purchase-pipeline simulate --last-days 7)",
    ),
    ("SQL syntax error", "queries are Athena (Trino) SQL, e.g. SELECT * FROM kpi_daily_summary"),
    (
        "only one SELECT query",
        "sql runs one read-only SELECT; tables: purchases, "
        "purchases_rejected, kpi_*, purchases_raw, landing_records",
    ),
    ("no partitions for", "days run from PURCHASES_START_DATE to today, e.g. --last-days 7"),
    ("PURCHASES_", "check the PURCHASES_* environment variables (README, Settings)"),
)


def _hint(message: str) -> str | None:
    return next((hint for needle, hint in HINTS if needle in message), None)


class Progress:
    """Progress lines on stderr for long commands: on when stderr is a terminal, or asked."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.started = time.monotonic()

    def say(self, text: str) -> None:
        if self.enabled:
            sys.stderr.write(f"[{time.monotonic() - self.started:6.1f} s] {text}\n")
            sys.stderr.flush()


def _day(value: str) -> dt.date:
    try:
        return parse_day(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _rate(value: str) -> float:
    try:
        rate = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid rate {value!r}: expected 0..1") from None
    if not 0 <= rate <= 1:
        raise argparse.ArgumentTypeError(f"invalid rate {value!r}: expected 0..1")
    return rate


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"invalid number {value!r}: must be at least 1")
    return number


def last_full_days(days: int, today: dt.date | None = None) -> tuple[dt.date, dt.date]:
    """The last `days` complete UTC days before today, as (first, last)."""
    today = today or dt.datetime.now(dt.UTC).date()
    return today - dt.timedelta(days=days), today - dt.timedelta(days=1)


def _day_range(args: argparse.Namespace) -> tuple[dt.date, dt.date]:
    if args.last_days is not None:
        if args.start or args.end:
            raise CliError("use either --last-days or --start/--end, not both")
        try:
            return last_full_days(args.last_days)
        except OverflowError:
            raise CliError(f"--last-days {args.last_days} reaches back before the year 1") from None
    if not (args.start and args.end):
        raise CliError("give --start and --end (YYYY-MM-DD), or --last-days N")
    if args.end < args.start:
        raise CliError(f"--end {args.end} is before --start {args.start}")
    return args.start, args.end


# --- simulate -------------------------------------------------------------------------------

RATE_OPTIONS = {
    "malformed_rate": "malformed JSON records",
    "missing_field_rate": "records missing a required field",
    "bad_type_rate": "records with a required field of the wrong type",
    "bad_timestamp_rate": "records with a timestamp before 2000 or after arrival",
    "late_rate": "records arriving the next UTC day (still counted)",
    "too_late_rate": "records arriving two or more days late (rejected)",
    "duplicate_rate": "records delivered twice (Firehose is at-least-once)",
    "no_purchase_id_rate": "records without purchaseId",
}


def cmd_simulate(args: argparse.Namespace) -> int:
    from purchase_pipeline.defs.resources import target_resources
    from purchase_pipeline.simulate import SimulationConfig, counted_events

    settings = Settings.from_env().check_paths()
    first, last = _day_range(args)
    rates = {name: getattr(args, name) for name in RATE_OPTIONS if getattr(args, name) is not None}
    config = SimulationConfig(
        start_day=first,
        days=(last - first).days + 1,
        events_per_day=args.events_per_day,
        seed=args.seed,
        gzip=args.gzip,
        delimiter=args.delimiter,
        **rates,
    )
    events, by_kind = counted_events(config)
    resources = target_resources(settings.target)
    progress = Progress(args.progress)
    progress.say(
        f"simulate: {config.days} days of {config.events_per_day:,} purchases to {settings.target}"
    )
    published = resources["publisher"].publish(
        resources["object_store"], _reporting(events, progress), config
    )
    log.info(
        "simulated %s..%s: %d records in %d objects (%d bytes) to %s",
        first,
        last,
        published.records,
        published.objects,
        published.bytes,
        settings.target,
    )
    _out(
        json.dumps(
            {
                "days": f"{first}..{last}",
                "objects": published.objects,
                "records": published.records,
                "bytes": published.bytes,
                "by_kind": by_kind,
            }
        )
    )
    return 0


def _reporting(
    events: Iterator[tuple[dt.datetime, bytes]], progress: Progress
) -> Iterator[tuple[dt.datetime, bytes]]:
    """The events unchanged, with a progress line as each arrival day is done."""
    day, count = None, 0
    for arrival, payload in events:
        if arrival.date() != day:
            if day is not None:
                progress.say(f"simulate: arrivals of {day} sent ({count:,} records so far)")
            day = arrival.date()
        count += 1
        yield arrival, payload
    if day is not None:
        progress.say(f"simulate: arrivals of {day} sent ({count:,} records in all)")


# --- materialize ----------------------------------------------------------------------------


def _instance() -> Any:
    from purchase_pipeline.instance import ready_instance

    return ready_instance()


def _run_range(
    instance: Any, job_name: str, start: str | None, end: str | None, progress: Progress
) -> tuple[bool, bool]:
    """Run a job over a partition range: (whether the run succeeded, whether it also passed
    every ERROR check). Failures are reported on stderr."""
    from dagster import AssetCheckSeverity, DagsterRunStatus

    from purchase_pipeline.definitions import build_definitions

    # Built now, not at import: the target is whatever PURCHASES_TARGET says at this call.
    defs = build_definitions()
    tags = {}
    if start is not None and end is not None:
        tags = {
            "dagster/asset_partition_range_start": start,
            "dagster/asset_partition_range_end": end,
        }
    span = f" {start} .. {end}" if start else ""
    progress.say(f"{job_name}{span}: running")
    result = defs.resolve_job_def(job_name).execute_in_process(
        run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
        instance=instance,
        tags=tags,
        raise_on_error=False,
    )
    status = instance.get_run_by_id(result.run_id).status
    ran = result.success and status == DagsterRunStatus.SUCCESS
    # A check that fails with ERROR leaves the run green in Dagster when it is not blocking,
    # but the data it checked is wrong: that is a failure of this command too.
    failed_checks = [
        e
        for e in result.get_asset_check_evaluations()
        if not e.passed and e.severity == AssetCheckSeverity.ERROR
    ]
    ok = ran and not failed_checks
    progress.say(f"{job_name}{span}: {'done' if ran else 'failed'}")
    checks_note = f", {len(failed_checks)} ERROR check(s) failed" if failed_checks else ""
    _out(f"{job_name}{span}: {'SUCCESS' if ran else 'FAILURE'} (run {result.run_id}){checks_note}")
    if not ran:
        for event in result.all_events:
            if event.is_step_failure:
                _err(f"  {event.step_key}: {_root_cause(event.step_failure_data.error)}")
    for check in failed_checks:
        partition = f" [{check.partition}]" if check.partition else ""
        about = " ".join((check.description or "failed").split())
        _err(f"  check {check.asset_key.to_user_string()}:{check.check_name}{partition}: {about}")
    return ran, ok


def _root_cause(error: Any) -> str:
    """The innermost error of Dagster's chain: the one that names the key or the query."""
    while error is not None and error.cause is not None:
        error = error.cause
    if error is None:
        return "failed"
    return " ".join(error.message.split())


def cmd_materialize(args: argparse.Namespace) -> int:
    # Validated here, not only when the partitions module is first imported: a bad setting
    # is a one-line error before Dagster runs anything, in every call of this process.
    Settings.from_env().check_paths()
    from purchase_pipeline.defs.partitions import daily_partitions, hourly_partitions

    first, last = _day_range(args)
    instance = _instance()
    day_keys = daily_partitions.get_partition_keys(dynamic_partitions_store=instance)
    days = [k for k in day_keys if first.isoformat() <= k <= last.isoformat()]
    # purchases for the last day also need the next day's landing hours (late arrivals),
    # as far as they exist yet: the day after the last partition at most (so an --end of
    # 9999-12-31 asks for no day past the calendar's end).
    hour_keys = hourly_partitions.get_partition_keys(dynamic_partitions_store=instance)
    wanted_first = f"{first:%Y-%m-%d}-00:00"
    wanted_last = f"{parse_day(days[-1]) + dt.timedelta(days=1):%Y-%m-%d}-23:00" if days else ""
    in_range = [k for k in hour_keys if wanted_first <= k <= wanted_last]
    if not in_range or not days:
        raise CliError(
            f"no partitions for {first}..{last}: partitions start at "
            f"{daily_partitions.start:%Y-%m-%d} (PURCHASES_START_DATE) and end today"
        )
    progress = Progress(args.progress)
    progress.say(f"materialize: {len(in_range)} landing hours, {len(days)} days, then the crawler")
    landed, landing_ok = _run_range(instance, "landing_job", in_range[0], in_range[-1], progress)
    # The tables read the staged landing hours, never the raw table, so they do not wait for
    # the crawler: it runs last, and a slow or failed crawl holds up nothing. Nor does a
    # failed check that does not block: the tables build, and the command exits 1.
    daily_ok = False
    if landed:
        _, daily_ok = _run_range(instance, "daily_job", days[0], days[-1], progress)
    else:
        _err("daily_job: skipped, because the landing hours did not all build")
    _, crawl_ok = _run_range(instance, "crawl_job", None, None, progress)
    return 0 if landing_ok and daily_ok and crawl_ok else 1


# --- sql ------------------------------------------------------------------------------------


def _cell(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def format_rows(columns: Sequence[str], rows: Sequence[Sequence[Any]], fmt: str) -> str:
    """Rows as an aligned text table, RFC 4180 CSV with a header, or a JSON array."""
    if fmt == "json":
        return json.dumps(
            [dict(zip(columns, map(_cell, row), strict=True)) for row in rows],
            ensure_ascii=False,
            indent=1,
            default=str,
        )
    if fmt == "csv":
        import io

        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(columns)
        writer.writerows([["" if v is None else _cell(v) for v in row] for row in rows])
        return buffer.getvalue()
    texts = [["NULL" if v is None else str(_cell(v)) for v in row] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in texts)]) for i, c in enumerate(columns)]
    line = "+".join("-" * (w + 2) for w in widths)
    # A space before each cell, as before each '|', so the cells line up over the dashes.
    out = [" " + " | ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)), line]
    out += [" " + " | ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in texts]
    out.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(out)


def cmd_sql(args: argparse.Namespace) -> int:
    from purchase_pipeline.defs.resources import target_resources
    from purchase_pipeline.resources.engine import QueryEngineError

    # `sql` only reads: a lake folder it cannot write is fine.
    settings = Settings.from_env().check_paths(writable=False)
    resources = target_resources(settings.target)
    try:
        result = resources["engine"].query(
            resources["object_store"], resources["catalog"], args.query
        )
    except QueryEngineError as exc:
        message = " ".join(str(exc).split())
        raise CliError(message, _hint(message)) from None
    _out(format_rows(result.columns, result.rows, args.format))
    return 0


# --- bootstrap ------------------------------------------------------------------------------


# Where `--policy-out` prints the policy instead of writing a file.
POLICY_TO_STDOUT = "-"


def cmd_bootstrap(args: argparse.Namespace) -> int:
    """Create (or, dry, describe) the aws resources; the IAM policy only where asked: a file
    (`--policy-out FILE`) or stdout after the steps (`--policy-out -`), never unasked, so a
    run never rewrites the tracked docs/iam-policy.json with the user's names."""
    from pathlib import Path

    from purchase_pipeline.bootstrap import BootstrapConfig, BootstrapError, policy_json, run

    settings = Settings.from_env().check_paths()
    config = BootstrapConfig(
        create_bucket=args.create_bucket,
        firehose_role_arn=args.firehose_role_arn or os.environ.get("PURCHASES_FIREHOSE_ROLE_ARN"),
        crawler_role_arn=args.crawler_role_arn or os.environ.get("PURCHASES_CRAWLER_ROLE_ARN"),
    )
    to_file = args.policy_out not in (None, POLICY_TO_STDOUT)
    try:
        steps = run(settings, config, args.dry_run, Path(args.policy_out) if to_file else None)
    except BootstrapError as exc:
        raise CliError(str(exc)) from None
    for step in steps:
        _out(f"{step.service} {step.name}: {step.outcome}")
    if args.policy_out == POLICY_TO_STDOUT:
        _out(policy_json(settings))
    elif to_file:
        _out(f"IAM policy {'would be ' if args.dry_run else ''}written to {args.policy_out}")
    else:
        _out(
            "IAM policy for these resources not written: --policy-out FILE writes it, "
            "--policy-out - prints it"
        )
    return 0


# --- doctor ---------------------------------------------------------------------------------


def cmd_doctor(args: argparse.Namespace) -> int:
    from purchase_pipeline.defs.resources import target_resources
    from purchase_pipeline.leftovers import TABLES, find_leftovers

    settings = Settings.from_env().check_paths(writable=False)
    resources = target_resources(settings.target)
    store = resources["object_store"]
    grace = resources["engine"].stale_build_seconds
    now = time.time()
    leftovers, looked_at = find_leftovers(store, resources["catalog"], grace, now)
    if not leftovers:
        if not args.quiet:
            _out(f"{TABLES}: no leftovers ({looked_at} build folders looked at)")
        return 0
    total = sum(f.bytes for f in leftovers)
    _out(
        f"{TABLES}: {len(leftovers)} folders no catalog partition points at and no build has "
        f"written for {grace / 3600:g} h, {total:,} bytes:"
    )
    for folder in leftovers:
        _out(
            f"  {store.uri(folder.folder)}  {folder.bytes:,} bytes in {folder.objects} objects, "
            f"{folder.age_hours(now):.1f} h old"
        )
    _out("  (a crashed build's; the next build of its partition deletes it, or delete it by hand)")
    return 1 if args.strict else 0


# --- entry point ----------------------------------------------------------------------------


def _progress_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=sys.stderr.isatty(),
        help="progress lines on stderr (default: when stderr is a terminal), e.g. --no-progress",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="purchase-pipeline",
        description="Firehose purchases -> Dagster -> KPI tables, on the local or aws target.",
        epilog="Examples: purchase-pipeline simulate --last-days 7; purchase-pipeline "
        'materialize --last-days 7; purchase-pipeline sql "SELECT * FROM kpi_daily_summary". '
        "Settings come from PURCHASES_* environment variables (see README).",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    sim = commands.add_parser(
        "simulate",
        help="publish simulated purchases the way the target receives them",
        description="Generate realistic purchases and land them like Firehose does. "
        "Example: purchase-pipeline simulate --last-days 7 --events-per-day 20000 --seed 1",
    )
    days = sim.add_argument_group("days (either --last-days or --start/--end)")
    days.add_argument("--last-days", type=_positive, help="the last N full UTC days, e.g. 7")
    days.add_argument("--start", type=_day, help="first purchase day, e.g. 2026-11-01")
    days.add_argument("--end", type=_day, help="last purchase day (inclusive), e.g. 2026-11-07")
    sim.add_argument(
        "--events-per-day",
        type=_positive,
        default=20_000,
        help="purchases per day (default 20000), e.g. 1000",
    )
    sim.add_argument(
        "--seed", type=int, default=42, help="random seed; same seed, same data, e.g. 7"
    )
    sim.add_argument(
        "--gzip",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="gzip the landed objects (default yes), e.g. --no-gzip",
    )
    sim.add_argument(
        "--delimiter",
        choices=["newline", "none", "mixed"],
        default="mixed",
        help="what the producer puts after each record in the local target's objects "
        "(default mixed); on aws the stream's processor adds one newline per record whatever "
        "this says, e.g. none",
    )
    for name, what in RATE_OPTIONS.items():
        sim.add_argument(
            f"--{name.replace('_', '-')}",
            type=_rate,
            dest=name,
            help=f"share of {what}, 0..1, e.g. 0.01",
        )
    _progress_option(sim)
    sim.set_defaults(func=cmd_simulate)

    mat = commands.add_parser(
        "materialize",
        help="build every asset for a range of days through Dagster",
        description="Build the landing hours and every daily table for the days, then run the "
        "crawler, recorded in DAGSTER_HOME. Example: purchase-pipeline materialize "
        "--start 2026-11-01 --end 2026-11-07",
    )
    mat.add_argument("--start", type=_day, help="first day, YYYY-MM-DD, e.g. 2026-11-01")
    mat.add_argument("--end", type=_day, help="last day (inclusive), e.g. 2026-11-07")
    mat.add_argument("--last-days", type=_positive, help="the last N full UTC days instead, e.g. 7")
    _progress_option(mat)
    mat.set_defaults(func=cmd_materialize)

    sql = commands.add_parser(
        "sql",
        help="run an Athena SQL query against the catalog",
        description='Example: purchase-pipeline sql "SELECT * FROM kpi_daily_summary" --format csv',
    )
    sql.add_argument(
        "query", help='one SELECT in Athena (Trino) SQL, e.g. "SELECT * FROM purchases LIMIT 5"'
    )
    sql.add_argument(
        "--format",
        choices=["table", "csv", "json"],
        default="table",
        help="output format (default table), e.g. csv",
    )
    sql.set_defaults(func=cmd_sql)

    boot = commands.add_parser(
        "bootstrap",
        help="create what the aws target needs (idempotent)",
        description="Create the Glue database, the raw table, the crawler's own database, the "
        "crawler (new folders only) and the Firehose delivery stream (and the bucket with "
        "--create-bucket); existing ones are left as they are, a crawler defined otherwise is "
        "updated. Example: purchase-pipeline bootstrap --dry-run",
    )
    boot.add_argument(
        "--dry-run",
        action="store_true",
        help="only say what would be created or updated, e.g. --dry-run",
    )
    boot.add_argument(
        "--create-bucket", action="store_true", help="also create the bucket, e.g. --create-bucket"
    )
    boot.add_argument(
        "--firehose-role-arn",
        help="role Firehose writes to S3 with (or PURCHASES_FIREHOSE_ROLE_ARN), "
        "e.g. arn:aws:iam::123456789012:role/firehose-to-s3",
    )
    boot.add_argument(
        "--crawler-role-arn",
        help="role the Glue crawler runs as (or PURCHASES_CRAWLER_ROLE_ARN), "
        "e.g. arn:aws:iam::123456789012:role/glue-crawler",
    )
    boot.add_argument(
        "--policy-out",
        metavar="FILE",
        help="write the least-privilege IAM policy for these resources to FILE, or print it "
        "after the steps with -; without it no policy is written, e.g. --policy-out "
        "iam-policy.json",
    )
    boot.set_defaults(func=cmd_bootstrap)

    doctor = commands.add_parser(
        "doctor",
        help="list leftovers: folders under tables/ no catalog partition points at",
        description="List the folders under tables/ that no catalog partition points at and "
        "no running build owns (nothing written in them for the engine's stale_build_seconds), "
        "with their bytes, on either target. Example: purchase-pipeline doctor",
    )
    doctor.add_argument(
        "--quiet", action="store_true", help="print nothing when there is none, e.g. --quiet"
    )
    doctor.add_argument(
        "--strict", action="store_true", help="exit 1 when there are leftovers, e.g. --strict"
    )
    doctor.set_defaults(func=cmd_doctor)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # Dagster marks BackfillPolicy as beta and says so on every import; not news to a user.
    warnings.filterwarnings("ignore", message=".*is currently in beta.*")
    # sqlglot warns when it parses a statement it does not know as a raw command; `sql`
    # refuses such a statement with its own one-line error.
    logging.getLogger("sqlglot").setLevel(logging.ERROR)
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except CliError as exc:
        _fail(str(exc), exc.hint or _hint(str(exc)))
        return 2
    except ValueError as exc:
        message = " ".join(str(exc).split())
        _fail(message, _hint(message))
        return 2


def _fail(message: str, hint: str | None) -> None:
    """One line saying what is wrong, and one saying what to try, if anything helps."""
    _err(f"error: {message}")
    if hint:
        _err(f"hint: {hint}")


if __name__ == "__main__":
    sys.exit(main())
