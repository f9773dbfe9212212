"""The Kubernetes example, as far as it can be checked without a Kubernetes cluster:
every object against the 1.32 schemas (strict), `kubectl kustomize` builds the set,
what its README promises holds, and its init script, run for `qreg-1` against a real
CA, writes a config a replica loads."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import kubernetes_validate
import pytest
import yaml
from cryptography import x509

from replica.config import load

EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "cluster-examples", "kubernetes")
KUBERNETES = "1.32"


def objects() -> list[dict]:
    with open(os.path.join(EXAMPLE, "qreg.yaml")) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def by_kind(kind: str) -> list[dict]:
    return [o for o in objects() if o["kind"] == kind]


def test_every_object_is_valid_for_kubernetes() -> None:
    for document in objects():
        kubernetes_validate.validate(document, KUBERNETES, strict=True)


def test_kustomize_builds_the_set_with_the_init_script() -> None:
    if shutil.which("kubectl") is None:
        pytest.fail("kubectl is not installed; the test command installs kubernetes-client")
    built = subprocess.run(
        ["kubectl", "kustomize", EXAMPLE], capture_output=True, text=True, check=True
    ).stdout
    documents = [d for d in yaml.safe_load_all(built) if d]
    kinds = sorted(d["kind"] for d in documents)
    assert kinds == ["ConfigMap", "PodDisruptionBudget", "Service", "Service", "StatefulSet"]
    (config_map,) = [d for d in documents if d["kind"] == "ConfigMap"]
    assert config_map["metadata"]["name"] == "qreg-init" and "init.sh" in config_map["data"]
    for document in documents:
        kubernetes_validate.validate(document, KUBERNETES, strict=True)


def test_what_the_readme_promises() -> None:
    (statefulset,) = by_kind("StatefulSet")
    (budget,) = by_kind("PodDisruptionBudget")
    replicas = statefulset["spec"]["replicas"]
    assert budget["spec"]["minAvailable"] == replicas // 2 + 1  # a majority
    peers = next(s for s in by_kind("Service") if s["metadata"]["name"] == "qreg-peers")
    assert peers["spec"]["clusterIP"] == "None" and peers["spec"]["publishNotReadyAddresses"]
    assert statefulset["spec"]["serviceName"] == "qreg-peers"
    pod = statefulset["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["runAsUser"] == 10001
    (replica,) = pod["containers"]
    assert replica["readinessProbe"]["httpGet"]["path"] == "/health"
    assert "tcpSocket" in replica["livenessProbe"]
    for container in [replica, *pod["initContainers"]]:
        for variable in container["env"]:
            if "SECRET" in variable["name"] or "PASSWORD" in variable["name"]:
                assert variable["name"].endswith("_FILE"), variable  # a path, not the secret
        assert container["securityContext"]["readOnlyRootFilesystem"]
    claim = statefulset["spec"]["volumeClaimTemplates"][0]
    assert claim["metadata"]["name"] == "data"


def test_the_init_script_configures_a_replica_that_loads(tmp_path) -> None:
    ca = tmp_path / "ca"
    qreg = [sys.executable, "-m", "cli.main"]
    subprocess.run([*qreg, "tls", "ca", "--out", str(ca)], check=True, capture_output=True)
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "qreg").write_text(f'#!/bin/sh\nexec {sys.executable} -m cli.main "$@"\n')
    (shim / "qreg").chmod(0o755)
    data = tmp_path / "data"
    data.mkdir()
    env = {
        **os.environ,
        "PATH": f"{shim}:{os.environ['PATH']}",
        "PYTHONPATH": os.path.abspath(os.path.join(EXAMPLE, "..", "..")),
        "POD_NAME": "qreg-1",
        "POD_NAMESPACE": "registry",
        "QREG_DATA": str(data),
        "CA_DIR": str(ca),
        "PUBLIC_NAMES": "registry.example.com",
    }
    script = os.path.join(EXAMPLE, "init.sh")
    done = subprocess.run(["sh", script], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    config = load(str(data / "replica.toml"), environ={"QREG_RAFT_SECRET": "s"})
    peers = "qreg-{}.qreg-peers.registry.svc.cluster.local:6000"
    assert config.replica_id == "qreg-1"
    assert config.raft_address == peers.format(1)
    assert config.raft_peers == (peers.format(0), peers.format(2))
    assert os.path.isfile(data / "tls" / "replica.crt")
    with open(data / "tls" / "replica.crt", "rb") as f:
        certificate = f.read()
    names = (
        x509.load_pem_x509_certificate(certificate)
        .extensions.get_extension_for_class(x509.SubjectAlternativeName)
        .value.get_values_for_type(x509.DNSName)
    )
    assert "qreg-1.qreg-peers.registry.svc.cluster.local" in names
    assert "registry.example.com" in names
    # A second start keeps what the first made.
    again = subprocess.run(["sh", script], env=env, capture_output=True, text=True)
    assert again.returncode == 0 and "configured already" in again.stdout
