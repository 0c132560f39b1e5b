"""moto's server over real HTTP on loopback, with the Glue calls Trino makes that moto lacks.

Trino's Glue metastore calls Glue's column-statistics APIs (Get/Update/Delete
ColumnStatisticsFor{Table,Partition}) on every partitioned write, even with statistics off;
moto 5.2.5 answers them with HTTP 500, so a CTAS on stock moto fails. This wrapper answers
them as Glue does for a table with no statistics (empty lists, no errors) and passes every
other request to moto. Product code never knows: it talks to "AWS" at an endpoint.

moto's backends are not safe under concurrent use and Trino calls Glue from many threads, so
the wrapper serves one request at a time (a lock around moto; keep-alive still works).
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

import requests
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import BaseWSGIServer, make_server

# What real Glue answers for a table or partition that has no column statistics.
COLUMN_STATISTICS_ANSWERS: dict[str, dict[str, Any]] = {
    "AWSGlue.GetColumnStatisticsForTable": {"ColumnStatisticsList": [], "Errors": []},
    "AWSGlue.GetColumnStatisticsForPartition": {"ColumnStatisticsList": [], "Errors": []},
    "AWSGlue.UpdateColumnStatisticsForTable": {"Errors": []},
    "AWSGlue.UpdateColumnStatisticsForPartition": {"Errors": []},
    "AWSGlue.DeleteColumnStatisticsForTable": {},
    "AWSGlue.DeleteColumnStatisticsForPartition": {},
}

# What boto3 signs requests to moto with (moto checks none; never a real key), and the
# roles bootstrap hands to Firehose and the crawler (moto checks no ARN either).
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}
BOOTSTRAP_ROLES = [
    "--firehose-role-arn", "arn:aws:iam::123456789012:role/firehose",
    "--crawler-role-arn", "arn:aws:iam::123456789012:role/crawler",
]  # fmt: skip

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def crawls_at_once(endpoint_url: str) -> None:
    """moto's crawler stays RUNNING until its state manager moves it on: make a crawl end at
    once (a real crawl takes minutes; docs/aws.md)."""
    requests.post(
        f"{endpoint_url}/moto-api/state-manager/set-transition",
        json={"model_name": "glue::crawl", "transition": {"progression": "immediate"}},
        timeout=10,
    ).raise_for_status()


def with_column_statistics(app: WsgiApp) -> WsgiApp:
    """`app` (moto) behind a lock, with Glue's column-statistics calls answered here."""
    lock = threading.Lock()

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        answer = COLUMN_STATISTICS_ANSWERS.get(environ.get("HTTP_X_AMZ_TARGET", ""))
        if answer is not None:
            body = json.dumps(answer).encode()
            start_response(
                "200 OK",
                [
                    ("Content-Type", "application/x-amz-json-1.1"),
                    ("Content-Length", str(len(body))),
                ],
            )
            return [body]
        with lock:
            return list(app(environ, start_response))

    return wsgi


def operation(environ: dict[str, Any]) -> str:
    """The AWS operation a request asks for, as a name to count: a JSON protocol's target
    (`Glue BatchGetPartition`), or S3's method on a bucket or an object (`S3 GET object`)."""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        service, _, name = target.partition(".")
        return f"{service.removeprefix('AWS').split('_')[0]} {name}"
    path = environ.get("PATH_INFO", "").strip("/")
    # Query keys, not substrings: `?prefix=deleted/` is a listing, not a DeleteObjects.
    keys = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    what = "object" if "/" in path else "bucket"
    special = [q for q in ("list-type", "delete", "uploads", "uploadId") if q in keys]
    return " ".join(["S3", environ.get("REQUEST_METHOD", "?"), what, *special])


def counting(app: WsgiApp, calls: Counter[str], lock: threading.Lock) -> WsgiApp:
    """`app`, counting the requests boto3 makes (the pipeline's, not Trino's), by operation."""

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if "Botocore/" in environ.get("HTTP_USER_AGENT", ""):
            with lock:
                calls[operation(environ)] += 1
        return app(environ, start_response)

    return wsgi


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MotoServer:
    """moto (with the column-statistics answers) in a thread of this process."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        # The calls boto3 made (the pipeline's, the tests' own), by operation: take_calls().
        self._calls: Counter[str] = Counter()
        self._calls_lock = threading.Lock()

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> MotoServer:
        # A line per request would bury a failing test's own output.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        app = counting(
            with_column_statistics(DomainDispatcherApplication(create_backend_app)),
            self._calls,
            self._calls_lock,
        )
        self._server = make_server(
            "127.0.0.1", self.port, app, threaded=True, request_handler=MotoRequestHandler
        )
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def take_calls(self) -> Counter[str]:
        """The calls boto3 made since the last take, by operation."""
        with self._calls_lock:
            taken = Counter(self._calls)
            self._calls.clear()
        return taken

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join()
