"""The object store on S3 (or any S3 endpoint: MinIO, LocalStack, moto).

Built on dagster-aws's `S3Resource` for the client (region, endpoint, profile, retries); the
region is resolved like every AWS client's (resources/aws_connection.py), so S3 is in the same
region as Glue and Athena (boto3 alone sends S3 to us-east-1 when only AWS_REGION is set).
Listing uses `ListObjectsV2` with `StartAfter`, so a caller that remembers the last key it saw
lists only what is new: Firehose keys sort by time.
"""

from collections.abc import Iterator
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from dagster_aws.s3 import S3Resource
from pydantic import Field, PrivateAttr

from purchase_pipeline.resources.aws_connection import resolve_region
from purchase_pipeline.resources.aws_errors import describe_aws_error
from purchase_pipeline.resources.object_store import (
    ObjectInfo,
    ObjectStore,
    ObjectStoreError,
    check_key,
)
from purchase_pipeline.settings import env, validate_bucket


class S3ObjectStore(ObjectStore):
    """A bucket on S3. Credentials come from the default AWS chain only."""

    bucket: str | None = Field(default=None, description="Bucket name; default PURCHASES_BUCKET.")
    region_name: str | None = Field(
        default=None,
        description="AWS region; default AWS_REGION, else AWS_DEFAULT_REGION, else the AWS "
        "profile's region.",
    )
    endpoint_url: str | None = Field(
        default=None,
        description="S3 endpoint for MinIO, LocalStack or moto; boto3 also honours "
        "AWS_ENDPOINT_URL.",
    )
    profile_name: str | None = Field(
        default=None, description="AWS profile of the shared config; default chain if unset."
    )
    max_attempts: int = Field(
        default=5,
        description="Retries per call after the first attempt (botocore standard mode: "
        "throttling, 5xx and network errors, exponential backoff with jitter).",
    )

    _client: Any = PrivateAttr(default=None)

    @property
    def bucket_name(self) -> str:
        return validate_bucket(self.bucket or env("PURCHASES_BUCKET"))

    def client(self) -> Any:
        """One boto3 client per resource instance (creating one costs a session), in the region
        every AWS client of the project uses (see `resolve_region`)."""
        if self._client is None:
            self._client = S3Resource(
                region_name=resolve_region(self.region_name, self.profile_name),
                endpoint_url=self.endpoint_url,
                profile_name=self.profile_name,
                max_attempts=self.max_attempts,
            ).get_client()
        return self._client

    def _fail(self, action: str, key: str, exc: Exception) -> ObjectStoreError:
        return ObjectStoreError(
            f"S3 {action} s3://{self.bucket_name}/{key} failed: {describe_aws_error(exc)}"
        )

    def iter_objects(
        self, prefix: str, start_after: str | None = None, page_size: int = 1000
    ) -> Iterator[ObjectInfo]:
        """Objects under `prefix` after `start_after`, in key order, page by page."""
        if prefix:
            check_key(prefix)
        kwargs: dict[str, Any] = {"Bucket": self.bucket_name, "Prefix": prefix}
        if start_after:
            kwargs["StartAfter"] = start_after
        paginator = self.client().get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(**kwargs, PaginationConfig={"PageSize": page_size}):
                for item in page.get("Contents", []):
                    yield ObjectInfo(
                        key=item["Key"],
                        size=int(item["Size"]),
                        modified=item["LastModified"].timestamp(),
                    )
        except (ClientError, BotoCoreError) as exc:
            raise self._fail("list", prefix, exc) from exc

    def list_objects(
        self, prefix: str, start_after: str | None = None, limit: int | None = None
    ) -> list[ObjectInfo]:
        found: list[ObjectInfo] = []
        page_size = min(limit, 1000) if limit else 1000
        for info in self.iter_objects(prefix, start_after, page_size):
            found.append(info)
            if limit is not None and len(found) >= limit:
                break
        return found

    def put_object(self, key: str, body: bytes) -> None:
        try:
            self.client().put_object(Bucket=self.bucket_name, Key=check_key(key), Body=body)
        except (ClientError, BotoCoreError) as exc:
            raise self._fail("put", key, exc) from exc

    def get_object(self, key: str) -> bytes:
        try:
            response = self.client().get_object(Bucket=self.bucket_name, Key=check_key(key))
            return response["Body"].read()
        except (ClientError, BotoCoreError) as exc:
            raise self._fail("get", key, exc) from exc

    def delete_prefix(self, prefix: str) -> int:
        folder = check_key(prefix if prefix.endswith("/") else prefix + "/")
        keys = [o.key for o in self.iter_objects(folder)]
        client = self.client()
        for start in range(0, len(keys), 1000):
            batch = [{"Key": k} for k in keys[start : start + 1000]]
            try:
                response = client.delete_objects(
                    Bucket=self.bucket_name, Delete={"Objects": batch, "Quiet": True}
                )
            except (ClientError, BotoCoreError) as exc:
                raise self._fail("delete", folder, exc) from exc
            errors = response.get("Errors", [])
            if errors:
                first = errors[0]
                raise ObjectStoreError(
                    f"S3 delete s3://{self.bucket_name}/{first.get('Key')} failed: "
                    f"{first.get('Code')}: {first.get('Message')}"
                )
        return len(keys)

    def move_prefix(self, source: str, target: str) -> None:
        source, target = check_key(source), check_key(target)
        if self.list_objects(target, limit=1):
            raise ObjectStoreError(
                f"cannot move s3://{self.bucket_name}/{source} to {target}: it exists"
            )
        client = self.client()
        for info in self.iter_objects(source):
            key = target + info.key[len(source) :]
            try:
                client.copy_object(
                    Bucket=self.bucket_name,
                    Key=key,
                    CopySource={"Bucket": self.bucket_name, "Key": info.key},
                )
            except (ClientError, BotoCoreError) as exc:
                raise self._fail("copy", info.key, exc) from exc
        self.delete_prefix(source)

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket_name}/{check_key(key)}"
