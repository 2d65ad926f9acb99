"""Where large files live (checkpoints): one interface, two backends. A folder on the API's
disk (the default), or an S3-compatible bucket for installations whose API runs on several
machines. Keys are made by the API from ids (``runs/<id>/checkpoints/<name>``), never from
what a user names; a file is written whole (a temporary name, then renamed or one PUT)
before anything points to it."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from api.core.config import Settings

CHUNK = 1 << 16


class ArtifactStore(Protocol):
    def put(self, key: str, path: Path) -> None:
        """Keep the file at ``path`` under ``key`` (replacing one there)."""

    def read(self, key: str) -> Iterator[bytes]:
        """The file under ``key``, in chunks."""

    def delete_prefix(self, prefix: str) -> None:
        """Forget every file whose key starts with ``prefix``."""


class LocalArtifacts:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root):  # keys come from ids; this is a last guard
            raise ValueError(f"artifact key {key!r} leads outside the store")
        return path

    def put(self, key: str, path: Path) -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, staged = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
        os.close(fd)
        shutil.copyfile(path, staged)
        os.replace(staged, target)  # whole or not at all

    def read(self, key: str) -> Iterator[bytes]:
        with self._path(key).open("rb") as f:
            while chunk := f.read(CHUNK):
                yield chunk

    def delete_prefix(self, prefix: str) -> None:
        shutil.rmtree(self._path(prefix), ignore_errors=True)


class S3Artifacts:
    """A bucket of an S3-compatible server, through boto3 (imported only when used)."""

    def __init__(self, url: str, endpoint_url: str | None) -> None:
        import boto3

        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        self.bucket, self.prefix = bucket, prefix.strip("/")
        self.client: Any = boto3.client("s3", endpoint_url=endpoint_url)

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def put(self, key: str, path: Path) -> None:
        with path.open("rb") as f:
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=f)

    def read(self, key: str) -> Iterator[bytes]:
        body = self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
        yield from body.iter_chunks(CHUNK)

    def delete_prefix(self, prefix: str) -> None:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self._key(prefix)
        )
        for page in pages:
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": keys})


def artifact_store(settings: Settings) -> ArtifactStore:
    if settings.artifacts.startswith("s3://"):
        return S3Artifacts(settings.artifacts, settings.s3_endpoint_url)
    return LocalArtifacts(Path(settings.artifacts or ".fitlens/artifacts"))
