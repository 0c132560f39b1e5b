"""The session's lakes set their environment only for the tests that use them.

A session fixture that left its variables set would change every test that runs after it:
the Trino lake's `PURCHASES_TRINO_URL` sent the Athena engine's tests, run after it, to Trino.
"""

import os

import pytest

from purchase_pipeline.settings import Settings
from purchase_pipeline_tests.conftest import Built


def _assert_set_only_while_used(session: Built, names: tuple[str, ...]) -> None:
    for name in names:
        assert os.environ.get(name) != session.environ.set[name], name
    with session.environ.applied():
        for name in names:
            assert os.environ[name] == session.environ.set[name], name
        assert Settings.from_env() == session.lake.settings
    for name in names:
        assert os.environ.get(name) != session.environ.set[name], name


def test_the_local_lake_sets_its_environment_only_while_a_test_uses_it(
    built_session: Built,
) -> None:
    _assert_set_only_while_used(built_session, ("PURCHASES_LAKE_DIR", "DAGSTER_HOME"))


@pytest.mark.trino
def test_the_trino_lake_sets_its_environment_only_while_a_test_uses_it(
    built_on_trino_session: Built,
) -> None:
    names = ("PURCHASES_TARGET", "PURCHASES_TRINO_URL", "AWS_ENDPOINT_URL", "PURCHASES_BUCKET")
    _assert_set_only_while_used(built_on_trino_session, names)
