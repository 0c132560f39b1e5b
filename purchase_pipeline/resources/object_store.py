"""Object store: where Firehose lands objects and where tables keep their Parquet files.

`LocalObjectStore` is a folder per bucket (`<lake dir>/<bucket>/<key>`). It lists keys in the
same order S3 does (UTF-8 byte order), with `start_after`, so sensors behave the same on both.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from dagster import ConfigurableResource
from pydantic import Field

from purchase_pipeline.settings import env, resolve_lake_dir, validate_bucket


@dataclass(frozen=True)
class ObjectInfo:
    """One stored object."""

    key: str
    size: int
    modified: float


class ObjectStoreError(RuntimeError):
    """An object that cannot be read or written; the message names the key."""


class ObjectStore(ConfigurableResource):
    """The object store interface (a bucket)."""

    def list_objects(
        self, prefix: str, start_after: str | None = None, limit: int | None = None
    ) -> list[ObjectInfo]:
        raise NotImplementedError

    def iter_objects(self, prefix: str, start_after: str | None = None) -> Iterator[ObjectInfo]:
        """Objects under `prefix` after `start_after`, in key order, read lazily."""
        yield from self.list_objects(prefix, start_after)

    def put_object(self, key: str, body: bytes) -> None:
        raise NotImplementedError

    def get_object(self, key: str) -> bytes:
        raise NotImplementedError

    def delete_prefix(self, prefix: str) -> int:
        raise NotImplementedError

    def move_prefix(self, source: str, target: str) -> None:
        """Move every object under folder `source` to folder `target` (which must not exist)."""
        raise NotImplementedError

    def uri(self, key: str) -> str:
        """The location the query engine reads `key` from."""
        raise NotImplementedError


def check_key(key: str) -> str:
    """A key or a folder prefix ("a/b/") that stays inside the bucket."""
    parts = key[:-1].split("/") if key.endswith("/") else key.split("/")
    if not key or key.startswith("/") or "\x00" in key or any(p in ("", ".", "..") for p in parts):
        raise ObjectStoreError(f"invalid object key {key!r}")
    return key


class LocalObjectStore(ObjectStore):
    """A bucket as a folder on disk: `<lake_dir>/<bucket>/<key>`."""

    lake_dir: str | None = Field(
        default=None,
        description="Folder holding one sub-folder per bucket; default PURCHASES_LAKE_DIR.",
    )
    bucket: str | None = Field(
        default=None,
        description="Bucket name, a folder under lake_dir; default PURCHASES_BUCKET.",
    )

    @property
    def root(self) -> Path:
        lake_dir = resolve_lake_dir(self.lake_dir or env("PURCHASES_LAKE_DIR"))
        return lake_dir / validate_bucket(self.bucket or env("PURCHASES_BUCKET"))

    def path(self, key: str) -> Path:
        return self.root / check_key(key)

    def list_objects(
        self, prefix: str, start_after: str | None = None, limit: int | None = None
    ) -> list[ObjectInfo]:
        # Walk only the folders that can hold keys after `start_after`, in key order.
        if prefix:
            check_key(prefix)
        base = self.root
        found: list[ObjectInfo] = []
        folder = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        start = base / folder if folder else base
        if not start.is_dir():
            return []
        after = (start_after or "").encode()
        for dirpath, dirnames, filenames in os.walk(start):
            rel_dir = os.path.relpath(dirpath, base).replace(os.sep, "/")
            rel_dir = "" if rel_dir == "." else rel_dir + "/"
            dirnames[:] = sorted((d for d in dirnames if not d.startswith(".tmp-")), key=str.encode)
            if after:
                # A folder can hold keys after `start_after` only if it sorts after it or
                # `start_after` is inside it: older hours are never walked.
                dirnames[:] = [
                    d
                    for d in dirnames
                    if (rel_dir + d + "/").encode() > after
                    or after.startswith((rel_dir + d + "/").encode())
                ]
            for name in filenames:
                if name.startswith(".tmp-"):
                    continue
                key = rel_dir + name
                if not key.startswith(prefix) or (after and key.encode() <= after):
                    continue
                stat = os.stat(os.path.join(dirpath, name))
                found.append(ObjectInfo(key=key, size=stat.st_size, modified=stat.st_mtime))
        found.sort(key=lambda o: o.key.encode())
        return found[:limit] if limit is not None else found

    def put_object(self, key: str, body: bytes) -> None:
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename, so a reader never sees half an object.
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(body)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get_object(self, key: str) -> bytes:
        try:
            return self.path(key).read_bytes()
        except OSError as exc:
            raise ObjectStoreError(f"cannot read object {key!r}: {exc.strerror}") from exc

    def delete_prefix(self, prefix: str) -> int:
        target = self.path(prefix.rstrip("/"))
        if not target.exists():
            return 0
        count = sum(len(files) for _, _, files in os.walk(target))
        shutil.rmtree(target, onerror=_gone_already_is_fine)
        return count

    def move_prefix(self, source: str, target: str) -> None:
        destination = self.path(target.rstrip("/"))
        if destination.exists():
            raise ObjectStoreError(f"cannot move {source!r} to {target!r}: it exists")
        destination.parent.mkdir(parents=True, exist_ok=True)
        os.rename(self.path(source.rstrip("/")), destination)

    def uri(self, key: str) -> str:
        return str(self.path(key))


def _gone_already_is_fine(
    function: object, path: str, exc_info: tuple[type[BaseException], BaseException, TracebackType]
) -> None:
    """rmtree's error handler: a file or folder another process deleted meanwhile is deleted,
    as on S3, where deleting a missing key succeeds (two builds of one day may both clear the
    same superseded folder). Any other error is raised."""
    if not isinstance(exc_info[1], FileNotFoundError):
        raise exc_info[1]
