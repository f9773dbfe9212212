"""TLS from the cluster CA: HTTPS by default, GET /ca, mutual TLS between replicas."""

from __future__ import annotations

import os
import subprocess
import sys

import grpc
import httpx
import pytest

from cli import configfile
from proto import blobs_pb2 as pb
from proto import blobs_pb2_grpc as rpc
from replica import pki
from tests.clients.tools import dir_digests, skopeo
from tests.cluster import LocalCluster, free_port_block, join_ports
from tests.images import image_layout
from tests.replication.test_maintenance import qreg

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    cluster = LocalCluster(str(tmp_path_factory.mktemp("tls") / "data"), replicas=2, tls=True)
    cluster.start()
    yield cluster
    cluster.stop()


def test_qreg_up_serves_https_with_the_cluster_ca(cluster: LocalCluster) -> None:
    assert all(url.startswith("https://") for url in cluster.urls)
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(cluster.url + "/v2/")  # the system's roots do not know the cluster CA
    assert (
        httpx.get(cluster.url + "/v2/", verify=cluster.verify, auth=cluster.auth).status_code == 200
    )
    served = httpx.get(cluster.url + "/ca", verify=False).content
    with open(cluster.ca, "rb") as f:
        assert served == f.read()


def test_skopeo_refuses_the_registry_until_it_trusts_the_ca(
    cluster: LocalCluster, tmp_path
) -> None:
    layout, manifest = image_layout(str(tmp_path / "layout"), "tls", layers=2)
    target = f"docker://{cluster.host}/tls/app:1"
    with pytest.raises(AssertionError, match="certificate signed by unknown authority"):
        skopeo("copy", f"oci:{layout}:latest", target)
    # What an operator does: curl -ks https://HOST/ca > /etc/containers/certs.d/HOST/ca.crt
    certs = tmp_path / "certs.d" / cluster.host
    certs.mkdir(parents=True)
    (certs / "ca.crt").write_bytes(httpx.get(cluster.url + "/ca", verify=False).content)
    skopeo("copy", "--dest-cert-dir", str(certs), f"oci:{layout}:latest", target)
    other = f"docker://{cluster.urls[1].split('://')[1]}/tls/app:1"  # via the other replica
    skopeo("copy", "--src-cert-dir", str(certs), other, f"dir:{tmp_path / 'out'}")
    assert dir_digests(str(tmp_path / "out"))["manifest.json"] == manifest.digest


def _grpc_address(cluster: LocalCluster, index: int) -> str:
    return str(
        configfile.read(os.path.join(cluster.data, f"replica-{index}", "replica.toml"))["grpc"][
            "address"
        ]
    )


def _holds(address: str, ca: bytes, cert: bytes, key: bytes) -> pb.HoldsResult:
    credentials = grpc.ssl_channel_credentials(
        root_certificates=ca, private_key=key, certificate_chain=cert
    )
    with grpc.secure_channel(address, credentials) as channel:
        return rpc.BlobTransferStub(channel).Holds(pb.HoldsRequest(digests=[]), timeout=5)


def test_a_peer_with_a_certificate_from_another_ca_is_refused(cluster: LocalCluster) -> None:
    address = _grpc_address(cluster, 0)
    files = pki.TlsFiles.under(os.path.join(cluster.data, "replica-1"))
    with open(files.ca, "rb") as f:
        ca = f.read()
    rogue_ca, rogue_ca_key = pki.create_ca("Somebody else")
    rogue_cert, rogue_key = pki.issue(rogue_ca, rogue_ca_key, "replica-1", ["127.0.0.1"])
    with pytest.raises(grpc.RpcError) as refused:
        _holds(address, ca, rogue_cert, rogue_key)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE  # the TLS handshake failed
    # Without any client certificate: refused too.
    with pytest.raises(grpc.RpcError):
        with grpc.secure_channel(address, grpc.ssl_channel_credentials(ca)) as channel:
            rpc.BlobTransferStub(channel).Holds(pb.HoldsRequest(), timeout=5)
    # The real peer's certificate passes TLS; the call still needs the cluster token.
    with open(files.cert, "rb") as cert, open(files.key, "rb") as key:
        with pytest.raises(grpc.RpcError) as denied:
            _holds(address, ca, cert.read(), key.read())
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_join_refuses_a_ca_that_is_not_the_tokens(cluster: LocalCluster, tmp_path) -> None:
    config0 = os.path.join(cluster.data, "replica-0", "replica.toml")
    token = qreg("join-token", "--config", config0).strip()
    proof, pin = token.rsplit(".", 1)
    assert len(pin) == 64
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "cli.main",
            "join",
            "--existing",
            cluster.url,
            "--token",
            f"{proof}.{'0' * 64}",
            "--replica-id",
            "replica-7",
            "--data",
            str(tmp_path / "j"),
            "--no-start",
            "--port",
            str(free_port_block()),
            *join_ports(),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "fingerprint differs" in done.stderr
    assert not os.path.exists(tmp_path / "j" / "replica.toml")
