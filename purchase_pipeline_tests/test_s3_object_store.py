"""The S3 object store against moto's server over real HTTP: listing order, StartAfter,
pagination, reads, deletes scoped to a folder, and errors that name the key."""

import uuid

import boto3
import pytest

from purchase_pipeline.resources.object_store import ObjectStoreError
from purchase_pipeline.resources.s3_object_store import S3ObjectStore
from purchase_pipeline_tests.conftest import Moto


@pytest.fixture
def store(moto_server: Moto) -> S3ObjectStore:
    bucket = f"test-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=moto_server.endpoint_url).create_bucket(Bucket=bucket)
    return S3ObjectStore(bucket=bucket, endpoint_url=moto_server.endpoint_url)


def test_put_get_and_list_in_key_order_with_start_after(store: S3ObjectStore) -> None:
    keys = ["p/2025/03/01/10/b", "p/2025/03/01/09/z", "p/2025/03/01/10/a", "p/Ä", "p/B", "q/x"]
    for i, key in enumerate(keys):
        store.put_object(key, f"body {i}".encode())
    assert store.get_object("p/B") == b"body 4"
    listed = [o.key for o in store.list_objects("p/")]
    assert listed == sorted((k for k in keys if k.startswith("p/")), key=str.encode)
    later = [o.key for o in store.list_objects("p/", start_after="p/2025/03/01/10/a")]
    assert later == ["p/2025/03/01/10/b", "p/B", "p/Ä"]
    assert [o.size for o in store.list_objects("p/B")] == [len(b"body 4")]
    assert [o.key for o in store.list_objects("p/", limit=2)] == listed[:2]


def test_listing_pages_through_more_than_one_page(store: S3ObjectStore) -> None:
    client = store.client()
    keys = [f"land/{i:05d}" for i in range(250)]
    for key in keys:
        client.put_object(Bucket=store.bucket_name, Key=key, Body=b"")
    assert [o.key for o in store.iter_objects("land/", page_size=100)] == keys
    after = [o.key for o in store.iter_objects("land/", start_after="land/00149", page_size=60)]
    assert after == keys[150:]


def test_delete_prefix_removes_the_folder_and_nothing_beside_it(store: S3ObjectStore) -> None:
    for key in ("t/dt=1/a", "t/dt=1/b", "t/dt=10/a", "t/dt=2/a"):
        store.put_object(key, b"x")
    assert store.delete_prefix("t/dt=1/") == 2
    assert [o.key for o in store.list_objects("t/")] == ["t/dt=10/a", "t/dt=2/a"]


def test_errors_name_the_key_and_carry_the_service_message(store: S3ObjectStore) -> None:
    with pytest.raises(ObjectStoreError, match=r"s3://test-\w+/missing/key.*NoSuchKey"):
        store.get_object("missing/key")
    gone = S3ObjectStore(bucket="no-such-bucket-here", endpoint_url=store.endpoint_url)
    with pytest.raises(ObjectStoreError, match="NoSuchBucket"):
        gone.list_objects("p/")


@pytest.mark.parametrize("key", ["../x", "/abs", "a//b", "a/../b", "."])
def test_keys_that_leave_the_bucket_are_refused(store: S3ObjectStore, key: str) -> None:
    with pytest.raises(ObjectStoreError, match="invalid object key"):
        store.put_object(key, b"x")


def test_uri_is_an_s3_url(store: S3ObjectStore) -> None:
    assert store.uri("a/b.gz") == f"s3://{store.bucket_name}/a/b.gz"
