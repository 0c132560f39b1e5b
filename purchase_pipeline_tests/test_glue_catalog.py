"""The Glue catalog against moto's server over real HTTP: tables round-trip, partitions are
created then swapped (the previous location handed back), statistics survive, and errors
name the table with the service's message."""

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
