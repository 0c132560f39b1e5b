"""The catalog in the AWS Glue Data Catalog: tables, their columns and partition locations.

Tables are external Parquet tables (or the crawler's JSON table) partitioned by one key.
Swapping a partition points it at a new S3 location with `UpdatePartition` (or creates it),
and returns the partition it replaced so the caller can delete the old files afterwards.
A partition's build statistics are kept in its `Parameters` (Glue stores strings).

The crawler's raw table is partitioned by four keys (Firehose's year/month/day/hour folders),
which `Table` and `Partition` cannot describe: `update_columns`, `list_partition_values` and
`add_partitions` change such a table in place, keeping whatever else Glue has of it.
"""

import json
from collections.abc import Mapping, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import Field

from purchase_pipeline.identifiers import validate_identifier
from purchase_pipeline.resources.aws_connection import AwsConnection
from purchase_pipeline.resources.aws_errors import describe_aws_error, error_code
from purchase_pipeline.resources.catalog import (
    Catalog,
    CatalogError,
    Column,
    Partition,
    Table,
    check_not_superseded,
)
from purchase_pipeline.settings import env, validate_bucket

_PARQUET = {
    "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
    "SerdeInfo": {
        "SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    },
}
_JSON = {
    "InputFormat": "org.apache.hadoop.mapred.TextInputFormat",
    "OutputFormat": "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
    "SerdeInfo": {"SerializationLibrary": "org.openx.data.jsonserde.JsonSerDe"},
}
# Whole lines of text, one column `line`: how Athena reads landing objects as they are.
_LINES = {
    "InputFormat": "org.apache.hadoop.mapred.TextInputFormat",
    "OutputFormat": "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
    "SerdeInfo": {
        "SerializationLibrary": "org.apache.hadoop.hive.serde2.RegexSerDe",
        "Parameters": {"input.regex": "^(.*)$"},
    },
}
_FORMATS = {"parquet": _PARQUET, "json": _JSON, "lines": _LINES}
_STATS_KEY = "purchase_pipeline.stats"
# The fields of a GetTable answer that UpdateTable takes back (the rest is read-only).
_TABLE_INPUT_FIELDS = (
    "Name",
    "Description",
    "Owner",
    "Retention",
    "StorageDescriptor",
    "PartitionKeys",
    "TableType",
    "Parameters",
    "ViewOriginalText",
    "ViewExpandedText",
    "TargetTable",
)
_BATCH_CREATE_PARTITIONS = 100  # BatchCreatePartition's limit per call
_BATCH_GET_PARTITIONS = 1000  # BatchGetPartition's limit per call


def glue_partitions(
    client: Any, database: str, table: str, columns: bool = True
) -> list[dict[str, Any]]:
    """Every partition of a Glue table, as GetPartitions describes it, page after page (a page
    holds at most 1,000). `columns=False` leaves out each partition's column schema, which a
    caller after the values alone does not need."""
    paginator = client.get_paginator("get_partitions")
    extra = {} if columns else {"ExcludeColumnSchema": True}
    pages = paginator.paginate(DatabaseName=database, TableName=table, **extra)
    return [p for page in pages for p in page.get("Partitions", [])]


class GlueCatalog(Catalog, AwsConnection):
    """A Glue database. Credentials come from the default AWS chain only."""

    database: str | None = Field(
        default=None, description="Glue database holding the tables; default PURCHASES_DATABASE."
    )
    bucket: str | None = Field(
        default=None, description="Bucket the table locations are in; default PURCHASES_BUCKET."
    )

    @property
    def database_name(self) -> str:
        return validate_identifier(self.database or env("PURCHASES_DATABASE"))

    @property
    def bucket_name(self) -> str:
        return validate_bucket(self.bucket or env("PURCHASES_BUCKET"))

    def client(self) -> Any:
        return self.boto_client("glue", max_attempts=8)

    def _fail(self, action: str, what: str, exc: Exception) -> CatalogError:
        return CatalogError(
            f"Glue {action} {self.database_name}.{what} failed: {describe_aws_error(exc)}"
        )

    def _s3(self, key_prefix: str) -> str:
        return f"s3://{self.bucket_name}/{key_prefix}"

    def _key(self, location: str) -> str:
        prefix = f"s3://{self.bucket_name}/"
        return location[len(prefix) :] if location.startswith(prefix) else location

    def _glue_table(self, name: str) -> dict[str, Any] | None:
        """The table as Glue describes it, or None."""
        try:
            response = self.client().get_table(
                DatabaseName=self.database_name, Name=validate_identifier(name)
            )
        except ClientError as exc:
            if error_code(exc) == "EntityNotFoundException":
                return None
            raise self._fail("GetTable", name, exc) from exc
        except BotoCoreError as exc:
            raise self._fail("GetTable", name, exc) from exc
        return dict(response["Table"])

    def _existing_glue_table(self, name: str) -> dict[str, Any]:
        glue = self._glue_table(name)
        if glue is None:
            raise CatalogError(f"table {self.database_name}.{name} is not in the Glue catalog")
        return glue

    def get_table(self, name: str) -> Table | None:
        glue = self._glue_table(name)
        return None if glue is None else self._table(glue)

    def _table(self, glue: dict[str, Any]) -> Table:
        descriptor = glue.get("StorageDescriptor", {})
        keys = glue.get("PartitionKeys", [])
        serde = descriptor.get("SerdeInfo", {}).get("SerializationLibrary", "")
        parameters = glue.get("Parameters", {})
        return Table(
            name=glue["Name"],
            columns=[Column(c["Name"], c["Type"]) for c in descriptor.get("Columns", [])]
            + [Column(k["Name"], k["Type"]) for k in keys],
            partition_key=keys[0]["Name"] if keys else None,
            format="lines"
            if "regex" in serde.lower()
            else "json"
            if "json" in serde.lower()
            else "parquet",
            location=self._key(descriptor.get("Location", "")),
            properties=json.loads(parameters.get("purchase_pipeline.properties", "{}")),
        )

    def list_tables(self) -> list[Table]:
        tables: list[Table] = []
        try:
            paginator = self.client().get_paginator("get_tables")
            for page in paginator.paginate(DatabaseName=self.database_name):
                tables += [self._table(t) for t in page.get("TableList", [])]
        except (ClientError, BotoCoreError) as exc:
            raise self._fail("GetTables", "*", exc) from exc
        return tables

    def put_table(self, table: Table) -> None:
        validate_identifier(table.name)
        data = [c for c in table.columns if c.name != table.partition_key]
        keys = [c for c in table.columns if c.name == table.partition_key]
        for column in table.columns:
            validate_identifier(column.name)
        table_input = {
            "Name": table.name,
            "TableType": "EXTERNAL_TABLE",
            "Parameters": {
                "classification": table.format,
                "purchase_pipeline.properties": json.dumps(table.properties, sort_keys=True),
            },
            "PartitionKeys": [{"Name": c.name, "Type": c.type} for c in keys],
            "StorageDescriptor": {
                "Columns": [{"Name": c.name, "Type": c.type} for c in data],
                "Location": self._s3(table.location),
                **_FORMATS[table.format],
            },
        }
        client = self.client()
        try:
            if self.get_table(table.name) is None:
                client.create_table(DatabaseName=self.database_name, TableInput=table_input)
            else:
                # A table the pipeline defines changes with its SQL file, whose history is in
                # git: an archived Glue version of it serves nobody, and Glue keeps at most
                # 100,000 a table (a schema change is the only reason to get here).
                client.update_table(
                    DatabaseName=self.database_name, TableInput=table_input, SkipArchive=True
                )
        except (ClientError, BotoCoreError) as exc:
            raise self._fail("CreateTable/UpdateTable", table.name, exc) from exc

    def _partition(self, glue: dict[str, Any]) -> Partition:
        parameters = glue.get("Parameters", {})
        return Partition(
            value=glue["Values"][0],
            location=self._key(glue.get("StorageDescriptor", {}).get("Location", "")),
            files=[],
            stats=json.loads(parameters.get(_STATS_KEY, "{}")),
        )

    def get_partition(self, table: str, value: str) -> Partition | None:
        try:
            response = self.client().get_partition(
                DatabaseName=self.database_name,
                TableName=validate_identifier(table),
                PartitionValues=[value],
            )
        except ClientError as exc:
            if error_code(exc) == "EntityNotFoundException":
                return None
            raise self._fail("GetPartition", f"{table} ({value})", exc) from exc
        except BotoCoreError as exc:
            raise self._fail("GetPartition", f"{table} ({value})", exc) from exc
        return self._partition(response["Partition"])

    def get_partitions(self, table: str, values: Sequence[str]) -> dict[str, Partition]:
        """BatchGetPartition, one call per 1,000 values (its limit) instead of a GetPartition
        each; values Glue leaves unprocessed (throttling) are asked one by one."""
        wanted = list(dict.fromkeys(values))
        found: dict[str, Partition] = {}
        unprocessed: list[str] = []
        for start in range(0, len(wanted), _BATCH_GET_PARTITIONS):
            batch = wanted[start : start + _BATCH_GET_PARTITIONS]
            try:
                response = self.client().batch_get_partition(
                    DatabaseName=self.database_name,
                    TableName=validate_identifier(table),
                    PartitionsToGet=[{"Values": [v]} for v in batch],
                )
            except (ClientError, BotoCoreError) as exc:
                what = f"{table} ({batch[0]} .. {batch[-1]}, {len(batch)} partitions)"
                raise self._fail("BatchGetPartition", what, exc) from exc
            for glue in response.get("Partitions", []):
                partition = self._partition(glue)
                found[partition.value] = partition
            unprocessed += [key["Values"][0] for key in response.get("UnprocessedKeys", [])]
        return found | super().get_partitions(table, unprocessed)

    def list_partitions(self, table: str) -> list[Partition]:
        try:
            found = glue_partitions(self.client(), self.database_name, validate_identifier(table))
        except (ClientError, BotoCoreError) as exc:
            raise self._fail("GetPartitions", table, exc) from exc
        return sorted((self._partition(p) for p in found), key=lambda p: p.value)

    def swap_partition(self, table: str, partition: Partition) -> Partition | None:
        existing = self.get_table(table)
        if existing is None:
            raise CatalogError(f"table {self.database_name}.{table} is not in the Glue catalog")
        previous = self.get_partition(table, partition.value)
        check_not_superseded(f"{self.database_name}.{table}", previous, partition)
        descriptor = {
            "Columns": [
                {"Name": c.name, "Type": c.type}
                for c in existing.columns
                if c.name != existing.partition_key
            ],
            "Location": self._s3(partition.location),
            **_FORMATS[existing.format],
        }
        partition_input = {
            "Values": [partition.value],
            "StorageDescriptor": descriptor,
            "Parameters": {_STATS_KEY: json.dumps(partition.stats, sort_keys=True)},
        }
        client = self.client()
        try:
            if previous is None:
                client.create_partition(
                    DatabaseName=self.database_name,
                    TableName=table,
                    PartitionInput=partition_input,
                )
            else:
                client.update_partition(
                    DatabaseName=self.database_name,
                    TableName=table,
                    PartitionValueList=[partition.value],
                    PartitionInput=partition_input,
                )
        except (ClientError, BotoCoreError) as exc:
            raise self._fail("swap partition of", f"{table} ({partition.value})", exc) from exc
        return previous

    def update_columns(self, table: str, columns: list[Column]) -> None:
        """Set the data columns of an existing table; its partition keys, location, format and
        parameters stay as Glue has them (for a table `put_table` cannot describe). Glue archives
        the version it replaces: for the crawler's raw table that is the only record of how the
        data's schema drifted."""
        for column in columns:
            validate_identifier(column.name)
        glue = self._existing_glue_table(table)
        table_input = {k: glue[k] for k in _TABLE_INPUT_FIELDS if k in glue}
        table_input["StorageDescriptor"] = {
            **glue.get("StorageDescriptor", {}),
            "Columns": [{"Name": c.name, "Type": c.type} for c in columns],
        }
        try:
            self.client().update_table(DatabaseName=self.database_name, TableInput=table_input)
        except (ClientError, BotoCoreError) as exc:
            raise self._fail("UpdateTable", table, exc) from exc

    def list_partition_values(self, table: str) -> set[tuple[str, ...]]:
        """The values of every partition, for a table partitioned by several keys."""
        try:
            found = glue_partitions(
                self.client(), self.database_name, validate_identifier(table), columns=False
            )
        except (ClientError, BotoCoreError) as exc:
            raise self._fail("GetPartitions", table, exc) from exc
        return {tuple(p["Values"]) for p in found}

    def register_partitions(self, table: str, partitions: Sequence[Partition]) -> None:
        """One GetTable and a BatchCreatePartition per 100 partitions, where adding each
        would be a GetTable, a GetPartition and a CreatePartition."""
        self.add_partitions(table, {(p.value,): self._s3(p.location) for p in partitions})

    def add_partitions(
        self, table: str, locations: Mapping[tuple[str, ...], str]
    ) -> list[tuple[str, ...]]:
        """Register partitions (their values, in partition key order -> S3 location) with the
        table's own columns and format. A partition that is already registered (by a run at
        the same time) is left as it is. Returns the values of the partitions it added."""
        descriptor = dict(self._existing_glue_table(table).get("StorageDescriptor", {}))
        inputs = [
            {"Values": list(values), "StorageDescriptor": {**descriptor, "Location": location}}
            for values, location in sorted(locations.items())
        ]
        added: list[tuple[str, ...]] = []
        for start in range(0, len(inputs), _BATCH_CREATE_PARTITIONS):
            batch = inputs[start : start + _BATCH_CREATE_PARTITIONS]
            try:
                response = self.client().batch_create_partition(
                    DatabaseName=self.database_name, TableName=table, PartitionInputList=batch
                )
            except (ClientError, BotoCoreError) as exc:
                raise self._fail("BatchCreatePartition", table, exc) from exc
            existing: set[tuple[str, ...]] = set()
            for error in response.get("Errors", []):
                values = tuple(error.get("PartitionValues", []))
                detail = error.get("ErrorDetail", {})
                if detail.get("ErrorCode") != "AlreadyExistsException":
                    raise CatalogError(
                        f"Glue BatchCreatePartition {self.database_name}.{table} "
                        f"({'/'.join(values)}) failed: {detail.get('ErrorCode', 'Error')}: "
                        f"{detail.get('ErrorMessage', 'no message')}"
                    )
                existing.add(values)
            added += [tuple(i["Values"]) for i in batch if tuple(i["Values"]) not in existing]
        return added
