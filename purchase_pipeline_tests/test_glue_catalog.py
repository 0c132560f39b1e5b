"""The Glue catalog against moto's server over real HTTP: tables round-trip, partitions are
created then swapped (the previous location handed back), statistics survive, and errors
name the table with the service's message."""

import json
import uuid

import boto3
import pytest
from botocore.stub import Stubber

from purchase_pipeline.resources.catalog import CatalogError, Column, Partition, Table
from purchase_pipeline.resources.glue_catalog import GlueCatalog, glue_partitions
from purchase_pipeline_tests.conftest import Moto


@pytest.fixture
def catalog(moto_server: Moto) -> GlueCatalog:
    database = f"db_{uuid.uuid4().hex[:10]}"
    boto3.client("glue", endpoint_url=moto_server.endpoint_url).create_database(
        DatabaseInput={"Name": database}
    )
    return GlueCatalog(
        database=database, bucket="bookstore-analytics", endpoint_url=moto_server.endpoint_url
    )


TABLE = Table(
    name="purchases",
    columns=[Column("purchase_id", "string"), Column("user_age", "int"), Column("dt", "date")],
    partition_key="dt",
    format="parquet",
    location="tables/purchases/",
)


def test_a_table_round_trips_and_is_listed(catalog: GlueCatalog) -> None:
    assert catalog.get_table("purchases") is None
    catalog.put_table(TABLE)
    assert catalog.get_table("purchases") == TABLE
    raw = boto3.client("glue", endpoint_url=catalog.endpoint_url).get_table(
        DatabaseName=catalog.database_name, Name="purchases"
    )["Table"]
    assert raw["StorageDescriptor"]["Location"] == "s3://bookstore-analytics/tables/purchases/"
    assert raw["PartitionKeys"] == [{"Name": "dt", "Type": "date"}]
    changed = Table(
        **{
            **TABLE.__dict__,
            "columns": [*TABLE.columns[:2], Column("x", "bigint"), TABLE.columns[2]],
        }
    )
    catalog.put_table(changed)
    assert [t.name for t in catalog.list_tables()] == ["purchases"]
    assert catalog.get_table("purchases").columns == changed.columns


def test_swapping_a_partition_returns_the_one_it_replaced(catalog: GlueCatalog) -> None:
    catalog.put_table(TABLE)
    first = Partition("2025-03-01", "tables/purchases/dt=2025-03-01/b1/", [], {"rows": 10})
    second = Partition("2025-03-01", "tables/purchases/dt=2025-03-01/b2/", [], {"rows": 12})
    assert catalog.swap_partition("purchases", first) is None
    assert catalog.swap_partition("purchases", second) == first
    assert catalog.get_partition("purchases", "2025-03-01") == second
    catalog.swap_partition("purchases", Partition("2025-03-02", "tables/purchases/x/", [], {}))
    assert [p.value for p in catalog.list_partitions("purchases")] == ["2025-03-01", "2025-03-02"]


def test_errors_name_the_table_and_carry_the_service_message(catalog: GlueCatalog) -> None:
    with pytest.raises(CatalogError, match="not in the Glue catalog"):
        catalog.swap_partition("nope", Partition("2025-03-01", "x/", [], {}))
    missing_db = GlueCatalog(database="no_such_db", endpoint_url=catalog.endpoint_url)
    with pytest.raises(CatalogError, match=r"no_such_db\.\*.*EntityNotFoundException"):
        missing_db.list_tables()
    with pytest.raises(ValueError, match="invalid identifier"):
        catalog.get_table("purchases; DROP TABLE x")


@pytest.mark.parametrize("columns", [True, False])
def test_every_page_of_partitions_is_read(columns: bool) -> None:
    """GetPartitions returns at most 1,000 partitions a call, and a table of hours has tens of
    thousands. moto answers in one page whatever is asked, so botocore's Stubber plays Glue's
    two pages here, and checks what each request asked for."""
    client = boto3.client(
        "glue", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    asked = {"DatabaseName": "db", "TableName": "t"}
    if not columns:
        asked["ExcludeColumnSchema"] = True
    pages = [
        ({"Partitions": [{"Values": ["1"]}, {"Values": ["2"]}], "NextToken": "page-2"}, asked),
        ({"Partitions": [{"Values": ["3"]}]}, {**asked, "NextToken": "page-2"}),
    ]
    with Stubber(client) as stub:
        for response, params in pages:
            stub.add_response("get_partitions", response, params)
        found = glue_partitions(client, "db", "t", columns=columns)
        stub.assert_no_pending_responses()
    assert [p["Values"] for p in found] == [["1"], ["2"], ["3"]]


def _glue_calls(catalog: GlueCatalog) -> list[str]:
    """The Glue operations `catalog`'s client sends from now on, in order."""
    calls: list[str] = []
    catalog.client().meta.events.register(
        "before-call.glue.*", lambda model, **_: calls.append(model.name)
    )
    return calls


def test_many_partitions_are_read_in_batches_of_a_thousand(catalog: GlueCatalog) -> None:
    """A day's checks and builds look up 24 or 48 hours: one BatchGetPartition per 1,000
    values instead of a GetPartition each; missing values are left out, repeated ones asked
    once."""
    catalog.put_table(TABLE)
    values = [f"v{i:04d}" for i in range(1005)]
    glue = boto3.client("glue", endpoint_url=catalog.endpoint_url)
    for start in range(0, len(values), 100):
        glue.batch_create_partition(
            DatabaseName=catalog.database_name,
            TableName="purchases",
            PartitionInputList=[
                {
                    "Values": [v],
                    "StorageDescriptor": {"Location": f"s3://bookstore-analytics/p/{v}/"},
                    "Parameters": {"purchase_pipeline.stats": json.dumps({"rows": i})},
                }
                for i, v in enumerate(values[start : start + 100], start)
            ],
        )
    calls = _glue_calls(catalog)
    found = catalog.get_partitions("purchases", [*values, "missing", values[0]])
    assert calls == ["BatchGetPartition", "BatchGetPartition"]
    assert sorted(found) == values
    assert found["v1004"] == Partition("v1004", "p/v1004/", [], {"rows": 1004})
    assert all(found[v] == catalog.get_partition("purchases", v) for v in values[::97])
    assert catalog.get_partitions("purchases", []) == {}


def test_registering_partitions_adds_the_missing_in_one_batch_and_keeps_the_rest(
    catalog: GlueCatalog,
) -> None:
    """The landing hours a build reads are registered first: 48 a day, never rewritten."""
    catalog.put_table(TABLE)
    kept = Partition("2025-03-01", "tables/purchases/dt=2025-03-01/b1/", [], {"rows": 3})
    catalog.swap_partition("purchases", kept)
    new = [Partition(f"2025-03-0{d}", f"raw/2025/03/0{d}/", [], {}) for d in (1, 2, 3)]
    calls = _glue_calls(catalog)
    catalog.register_partitions("purchases", new)
    assert calls == ["GetTable", "BatchCreatePartition"]
    assert catalog.list_partitions("purchases") == [kept, new[1], new[2]]
    # As swap_partition would register them: the table's columns and format.
    raw = boto3.client("glue", endpoint_url=catalog.endpoint_url).get_partition(
        DatabaseName=catalog.database_name, TableName="purchases", PartitionValues=["2025-03-02"]
    )["Partition"]["StorageDescriptor"]
    swapped = boto3.client("glue", endpoint_url=catalog.endpoint_url).get_partition(
        DatabaseName=catalog.database_name, TableName="purchases", PartitionValues=["2025-03-01"]
    )["Partition"]["StorageDescriptor"]
    assert raw["Location"] == "s3://bookstore-analytics/raw/2025/03/02/"
    assert {k: v for k, v in raw.items() if k != "Location"} == {
        k: v for k, v in swapped.items() if k != "Location"
    }


def test_values_glue_leaves_unprocessed_are_asked_one_by_one(
    catalog: GlueCatalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Glue may answer a batch in part (throttled) and name the rest UnprocessedKeys; moto
    never does, so botocore's Stubber plays it, and checks what each request asked for."""
    client = boto3.client(
        "glue", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    monkeypatch.setattr(GlueCatalog, "client", lambda self: client)
    where = {"DatabaseName": catalog.database_name, "TableName": "purchases"}
    glue = {"StorageDescriptor": {"Location": "s3://bookstore-analytics/p/"}}
    with Stubber(client) as stub:
        stub.add_response(
            "batch_get_partition",
            {"Partitions": [{"Values": ["a"], **glue}], "UnprocessedKeys": [{"Values": ["b"]}]},
            {**where, "PartitionsToGet": [{"Values": ["a"]}, {"Values": ["b"]}]},
        )
        stub.add_response(
            "get_partition",
            {"Partition": {"Values": ["b"], **glue}},
            {**where, "PartitionValues": ["b"]},
        )
        found = catalog.get_partitions("purchases", ["a", "b"])
        stub.assert_no_pending_responses()
    assert found == {"a": Partition("a", "p/", [], {}), "b": Partition("b", "p/", [], {})}


def test_a_failed_batch_names_the_table_and_the_values(catalog: GlueCatalog) -> None:
    with pytest.raises(
        CatalogError,
        match=r"BatchGetPartition .*nope \(x \.\. y, 2 partitions\).*EntityNotFoundException",
    ):
        catalog.get_partitions("nope", ["x", "y"])
