"""The test suite's own services, checked without Trino running: when the Trino tests may skip
(no JDK new enough, no Maven) and when that skip is a failure (PURCHASES_REQUIRE_SERVICES=1,
as .ci/run sets it), and the Glue calls the moto wrapper answers for Trino."""

from pathlib import Path

import boto3
import pytest
from _pytest.outcomes import Failed, Skipped

from purchase_pipeline_tests.conftest import REQUIRE_SERVICES, Moto, unavailable
from purchase_pipeline_tests.services import trino_server

pytestmark = pytest.mark.trino


def _jdk(root: Path, name: str, version: str) -> Path:
    home = root / name
    (home / "bin").mkdir(parents=True)
    (home / "bin" / "java").write_text("#!/bin/sh\n")
    (home / "release").write_text(f'IMPLEMENTOR="x"\nJAVA_VERSION="{version}"\n')
    return home


def test_trino_runs_on_the_newest_jdk_that_is_new_enough(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    _jdk(tmp_path, "java-17-openjdk-amd64", "17.0.15")
    newest = _jdk(tmp_path, "temurin-25-jdk-amd64", "25.0.3")
    assert trino_server.java_home(tmp_path) == newest
    # JAVA_HOME wins when it is new enough, and is passed over when it is not.
    other = _jdk(tmp_path / "opt", "jdk-24", "24.0.1")
    monkeypatch.setenv("JAVA_HOME", str(other))
    assert trino_server.java_home(tmp_path) == other
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "java-17-openjdk-amd64"))
    assert trino_server.java_home(tmp_path) == newest


def test_trino_is_unavailable_without_java_24_or_maven(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    _jdk(tmp_path, "java-17-openjdk-amd64", "17.0.15")
    with pytest.raises(trino_server.TrinoUnavailable, match="needs Java 24 or newer"):
        trino_server.java_home(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(trino_server.TrinoUnavailable, match=r"Maven \(mvn\) is not on PATH"):
        trino_server.maven()


def test_trino_unavailable_skips_with_its_reason_and_fails_where_required(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(REQUIRE_SERVICES, raising=False)
    with pytest.raises(Skipped, match="no JDK"):
        unavailable("Trino cannot run here: no JDK")
    monkeypatch.setenv(REQUIRE_SERVICES, "1")
    with pytest.raises(Failed, match=r"no JDK .*PURCHASES_REQUIRE_SERVICES=1"):
        unavailable("Trino cannot run here: no JDK")


def test_trino_catalog_is_glue_and_s3_at_moto_with_every_cache_off(tmp_path: Path) -> None:
    trino_server.write_config(
        tmp_path, tmp_path / "data", 8123, "http://127.0.0.1:5999", "eu-west-1"
    )
    catalog = dict(
        line.split("=", 1)
        for line in (tmp_path / "catalog" / "awsdatacatalog.properties").read_text().splitlines()
    )
    assert catalog["hive.metastore"] == "glue"
    assert catalog["hive.metastore.glue.endpoint-url"] == catalog["s3.endpoint"]
    assert catalog["s3.endpoint"] == "http://127.0.0.1:5999"
    assert catalog["s3.path-style-access"] == "true"
    assert catalog["hive.metastore-cache-ttl"] == catalog["hive.metastore-stats-cache-ttl"] == "0s"
    assert catalog["hive.metastore.glue.region"] == catalog["s3.region"] == "eu-west-1"
    config = (tmp_path / "config.properties").read_text()
    assert "http-server.http.port=8123\n" in config
    assert "discovery.uri=http://127.0.0.1:8123\n" in config
    assert "node.bind-ip=127.0.0.1\n" in (tmp_path / "node.properties").read_text()


def test_trino_glue_column_statistics_calls_are_answered_like_glue_without_statistics(
    moto_server: Moto,
) -> None:
    """Trino calls these on every partitioned write; stock moto answers HTTP 500."""
    glue = boto3.client("glue", endpoint_url=moto_server.endpoint_url)
    found = glue.get_column_statistics_for_table(
        DatabaseName="any", TableName="any", ColumnNames=["a"]
    )
    assert found["ColumnStatisticsList"] == [] and found["Errors"] == []
    glue.delete_column_statistics_for_partition(
        DatabaseName="any", TableName="any", PartitionValues=["x"], ColumnName="a"
    )
    # Everything else is still moto's: an unknown database is an error.
    with pytest.raises(glue.exceptions.EntityNotFoundException):
        glue.get_database(Name="any")


def test_the_moto_wrapper_counts_boto3_calls_by_operation_and_not_other_clients() -> None:
    """The benchmark's count of the AWS calls a day's build makes (bench/aws_cost.py)."""
    import requests

    from purchase_pipeline_tests.conftest import restored_environ
    from purchase_pipeline_tests.services.moto_server import FAKE_CREDENTIALS, MotoServer

    with restored_environ(**FAKE_CREDENTIALS):
        server = MotoServer().start()
        try:
            s3 = boto3.client("s3", endpoint_url=server.endpoint_url)
            glue = boto3.client("glue", endpoint_url=server.endpoint_url)
            s3.create_bucket(Bucket="bucket-one")
            s3.put_object(Bucket="bucket-one", Key="k/1", Body=b"x")
            s3.put_object(Bucket="bucket-one", Key="k/2", Body=b"y")
            s3.list_objects_v2(Bucket="bucket-one", Prefix="k/")
            s3.list_objects_v2(Bucket="bucket-one", Prefix="deleted/")
            s3.get_object(Bucket="bucket-one", Key="k/1")
            glue.create_database(DatabaseInput={"Name": "d"})
            with pytest.raises(glue.exceptions.EntityNotFoundException):
                glue.get_table(DatabaseName="d", Name="t")
            # Not boto3 (Trino is a Java client): not counted.
            requests.get(f"{server.endpoint_url}/bucket-one?list-type=2", timeout=10)
            assert server.take_calls() == {
                "S3 PUT bucket": 1,
                "S3 PUT object": 2,
                "S3 GET bucket list-type": 2,
                "S3 GET object": 1,
                "Glue CreateDatabase": 1,
                "Glue GetTable": 1,
            }
            assert server.take_calls() == {}
        finally:
            server.stop()
