"""`qreg tls renew` on a running three-replica cluster: the replica presents its new
certificate to new HTTPS and gRPC connections within seconds, while a client pulling
the whole time sees no failure, and blobs still replicate over gRPC (the renewed
replica as server and as client)."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import threading
import time
import tomllib

import httpx
import pytest
from cryptography import x509

from tests.cluster import LocalCluster
from tests.images import OCI_MANIFEST, image_of, layer

pytestmark = pytest.mark.slow


def served_certificate(address: str, context: ssl.SSLContext) -> x509.Certificate:
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname=host) as tls:
            der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def test_a_renewed_certificate_is_served_without_a_restart(tmp_path) -> None:
    cluster = LocalCluster(str(tmp_path / "c"), replicas=3, tls=True).start()
    try:
        config = os.path.join(cluster.data, "replica-0", "replica.toml")
        https = cluster.urls[0].split("://")[1]
        grpc_address = _grpc_address(config)
        plain = ssl.create_default_context(cafile=cluster.ca)
        plain.check_hostname = False
        mutual = ssl.create_default_context(cafile=cluster.ca)
        mutual.check_hostname = False
        peer_tls = os.path.join(cluster.data, "replica-1", "tls")
        mutual.load_cert_chain(
            os.path.join(peer_tls, "replica.crt"), os.path.join(peer_tls, "replica.key")
        )
        mutual.set_alpn_protocols(["h2"])
        before = served_certificate(https, plain)
        grpc_before = served_certificate(grpc_address, mutual)
        assert before.serial_number == grpc_before.serial_number

        name = "ops/renew"
        blob = layer("renew")
        config_blob, manifest = image_of([blob], label="renew")
        with cluster.client() as client:
            for b in (config_blob, blob):
                r = client.post(f"/v2/{name}/blobs/uploads/", params={"digest": b.digest},
                                content=b.data)  # fmt: skip
                assert r.status_code == 201
            r = client.put(f"/v2/{name}/manifests/1", content=manifest.data,
                           headers={"Content-Type": OCI_MANIFEST})  # fmt: skip
            assert r.status_code == 201

        failures: list[str] = []
        pulls = 0
        stop = threading.Event()

        def pull_all_along() -> None:
            nonlocal pulls
            with cluster.client(0) as client:
                while not stop.is_set():
                    try:
                        r = client.get(f"/v2/{name}/manifests/1", headers={"Accept": OCI_MANIFEST})
                        if r.status_code != 200:
                            failures.append(f"{r.status_code} {r.text[:100]}")
                    except httpx.HTTPError as e:
                        failures.append(repr(e))
                    pulls += 1
                    # Some on new connections too: they get whichever certificate is live.
                    if pulls % 10 == 0:
                        try:
                            r = httpx.get(cluster.urls[0] + "/v2/", verify=cluster.verify)
                            if r.status_code not in (200, 401):
                                failures.append(str(r.status_code))
                        except httpx.HTTPError as e:
                            failures.append(repr(e))

        puller = threading.Thread(target=pull_all_along)
        puller.start()
        time.sleep(1)
        done = subprocess.run(
            [sys.executable, "-m", "cli.main", "tls", "renew", "--config", config, "--days", "90"],
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
        assert "valid until" in done.stdout

        deadline = time.monotonic() + 20
        while served_certificate(https, plain).serial_number == before.serial_number:
            assert time.monotonic() < deadline, "the new certificate was not taken up"
            time.sleep(0.5)
        after = served_certificate(https, plain)
        assert after.not_valid_after_utc < before.not_valid_after_utc  # 90 days, not 825
        assert after.public_key() == before.public_key()  # the same key, renewed
        while served_certificate(grpc_address, mutual).serial_number == grpc_before.serial_number:
            assert time.monotonic() < deadline, "the blob service kept the old certificate"
            time.sleep(0.5)
        time.sleep(1)
        stop.set()
        puller.join(timeout=30)
        assert pulls > 20 and not failures, failures[:5]

        # Blobs still travel over gRPC from and to the renewed replica.
        other = layer("after renewal")
        with cluster.client(0) as client:
            r = client.post(f"/v2/{name}/blobs/uploads/", params={"digest": other.digest},
                            content=other.data)  # fmt: skip
            assert r.status_code == 201
        with cluster.client(2) as client:
            r = client.get(f"/v2/{name}/blobs/{other.digest}")
            assert r.status_code == 200 and r.content == other.data
    finally:
        cluster.stop()


def _grpc_address(config: str) -> str:
    with open(config, "rb") as f:
        return str(tomllib.load(f)["grpc"]["address"])
