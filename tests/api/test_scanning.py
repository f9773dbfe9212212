"""Scanning on three replicas: an image made of this machine's real dpkg database (with
libssl3 as an older bookworm had it) and a real Python package, pushed with skopeo;
an OSV database of real advisories imported with qreg; the report names the expected
findings; the inventory equals dpkg-query on the same database; a database update
flags the image again from the stored inventories, its layers gone from every disk."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import zipfile

import httpx
import pytest

from tests.clients.tools import skopeo
from tests.cluster import LocalCluster
from tests.images import OCI_LAYER, OCI_MANIFEST, Blob, image_of, layer_tar, write_layout
from tests.qreg_cli import qreg
from tests.unit.replica.test_scan import ADVISORIES, BOOKWORM, record

pytestmark = pytest.mark.slow

with open("/var/lib/dpkg/status") as _status:
    STATUS = _status.read()


def _old_libssl3(status: str) -> str:
    stanzas = status.split("\n\n")
    for i, stanza in enumerate(stanzas):
        if stanza.startswith("Package: libssl3\n"):
            stanzas[i] = "\n".join(
                "Version: 3.0.9-1" if line.startswith("Version:") else line
                for line in stanza.splitlines()
            )
    return "\n\n".join(stanzas)


def osv_zip(path, records: list[dict]) -> str:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for r in records:
            z.writestr(f"{r['id']}.json", json.dumps(r))
    with open(path, "wb") as f:
        f.write(buffer.getvalue())
    return str(path)


def wait_report(
    client: httpx.Client, ref: str, version: int | None = None, timeout: float = 60
) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        report = client.get(f"/api/v0/repositories/{ref}/scan", params={"packages": 1}).json()
        if report.get("status") == "done" and (version is None or report["db_version"] == version):
            return report
        assert time.monotonic() < deadline, report
        time.sleep(0.5)


def refuse_vulnerable_pulls(cluster: LocalCluster, tmp_path, env: dict) -> None:
    # The layers were removed above: a pull is its manifest's GET here.
    source = f"docker://{cluster.host}/lib/scanned:v1"
    skopeo("inspect", "--raw", "--tls-verify=false", source)
    qreg("repo", "vulnerabilities", "lib/scanned", "--block", "high", env=env)
    with pytest.raises(AssertionError, match="DSA-5532-1") as refused:
        skopeo("inspect", "--raw", "--tls-verify=false", source)
    assert "refuses images with high vulnerabilities" in str(refused.value)
    with cluster.client() as client:
        r = client.get("/v2/lib/scanned/manifests/v1", headers={"Accept": OCI_MANIFEST})
        assert r.status_code == 403 and r.json()["errors"][0]["code"] == "DENIED"
    allow = ["--allow", "CVE-2023-5363", "--allow", "DSA-9999-1"]  # an alias, an id
    qreg("repo", "vulnerabilities", "lib/scanned", "--block", "high", *allow, env=env)
    skopeo("inspect", "--raw", "--tls-verify=false", source)


def see_it_in_the_browser(cluster: LocalCluster, tmp_path) -> None:
    from playwright.sync_api import sync_playwright

    from tests.ui.conftest import CHROMIUM, Watched, sign_in

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        watched = Watched(browser.new_page(), str(tmp_path / "screenshots"))
        sign_in(watched.page, cluster.url, "admin", cluster.admin_password)
        watched.page.goto(cluster.url + "/repositories/lib/scanned")
        watched.page.click("a[href='/repositories/lib/scanned/tags/v1/scan']")
        text = watched.page.inner_text("main")
        assert "DSA-5532-1" in text and "CVE-2023-5363" in text and "3.0.11-1~deb12u2" in text
        watched.shot("scan-report")
        watched.clean()
        browser.close()


def test_a_pushed_image_is_scanned_and_rescanned_when_the_database_changes(tmp_path) -> None:
    cluster = LocalCluster(str(tmp_path / "data"), replicas=3).start()
    try:
        env = {**os.environ, "QREG_LOGIN_FILE": str(tmp_path / "login.json")}
        subprocess.run(
            [
                sys.executable,
                "-m",
                "cli.main",
                "login",
                cluster.url,
                "-u",
                "admin",
                "--password-stdin",
            ],
            input=cluster.admin_password,
            text=True,
            env=env,
            check=True,
            capture_output=True,
        )
        first = osv_zip(
            tmp_path / "Debian.zip", [r for r in ADVISORIES if not r["id"].startswith("GHSA")]
        )
        python = osv_zip(
            tmp_path / "PyPI.zip", [r for r in ADVISORIES if r["id"].startswith("GHSA-j8r2")]
        )
        out = qreg("scan", "db", "import", first, python, env=env)
        assert "imported Debian" in out and "imported PyPI" in out

        base = Blob(
            OCI_LAYER,
            layer_tar(
                {"etc/os-release": BOOKWORM, "var/lib/dpkg/status": _old_libssl3(STATUS).encode()}
            ),
        )
        metadata = b"Metadata-Version: 2.1\nName: requests\nVersion: 2.28.1\n"
        dist = "usr/lib/python3/dist-packages/requests-2.28.1.dist-info/METADATA"
        app = Blob(OCI_LAYER, layer_tar({dist: metadata}))
        config, manifest = image_of([base, app], label="scanned")
        layout = write_layout(str(tmp_path / "layout"), [config, base, app], manifest, "v1")
        skopeo(
            "copy",
            "--dest-tls-verify=false",
            f"oci:{layout}:v1",
            f"docker://{cluster.host}/lib/scanned:v1",
        )

        with cluster.client(1) as client:
            report = wait_report(client, "lib/scanned/tags/v1")
            found = {(f["package"], f["vulnerability"], f["fixed"]) for f in report["findings"]}
            assert found == {
                ("libssl3", "DSA-5532-1", "3.0.11-1~deb12u2"),
                ("requests", "GHSA-j8r2-6x86-q33q", "2.31.0"),
            }
            assert report["summary"]["high"] == 1 and report["summary"]["medium"] == 1
            # The inventory against the ground truth: dpkg-query on the same database.
            truth = subprocess.run(
                ["dpkg-query", "-W", "-f", "${db:Status-Status} ${Package} ${Version}\n"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            expected = {
                f"deb {name} {'3.0.9-1' if name == 'libssl3' else version}"
                for status, name, version in (line.split(" ", 2) for line in truth.splitlines())
                if status == "installed"
            }
            assert {p for p in report["packages"] if p.startswith("deb ")} == expected
            shown = qreg("scan", "show", "lib/scanned:v1", env=env)
            assert "DSA-5532-1" in shown and "CVE-2023-5363" in shown and "1 high" in shown

            # A new advisory, for a package the image has at its installed version: the
            # rescan works from the stored inventories, so the layers are removed first.
            for i in range(3):
                for blob in (base, app):
                    hexpart = blob.digest.split(":")[1]
                    path = os.path.join(
                        cluster.data,
                        f"replica-{i}",
                        "storage",
                        "blobs",
                        "sha256",
                        hexpart[:2],
                        hexpart,
                    )
                    if os.path.exists(path):
                        os.unlink(path)
            zlib_version = next(
                line.split(" ", 2)[2]
                for line in truth.splitlines()
                if line.split(" ")[1] == "zlib1g"
            )
            newer = record(
                "DSA-9999-1",
                "Debian:12",
                "zlib",
                [{"introduced": "0"}, {"fixed": zlib_version + "+fix1"}],
                database_specific={"severity": "CRITICAL"},
            )
            second = osv_zip(
                tmp_path / "Debian-2.zip",
                [*[r for r in ADVISORIES if not r["id"].startswith("GHSA")], newer],
            )
            out = qreg("scan", "db", "import", second, "--name", "Debian", env=env)
            version = int(out.rsplit("database version ", 1)[1].split(":")[0])
            report = wait_report(client, "lib/scanned/tags/v1", version)
            assert ("zlib1g", "DSA-9999-1") in {
                (f["package"], f["vulnerability"]) for f in report["findings"]
            }
            zlib_packages = [f for f in report["findings"] if f["vulnerability"] == "DSA-9999-1"]
            assert report["summary"]["critical"] == len(zlib_packages)  # zlib1g, zlib1g-dev…
            assert "1 images queued" in qreg("scan", "rescan", "lib/scanned", env=env)
            status = qreg("scan", "db", "status", env=env)
            assert f"database version {version}" in status
            refuse_vulnerable_pulls(cluster, tmp_path, env)
        see_it_in_the_browser(cluster, tmp_path)
    finally:
        cluster.stop()


def test_when_the_replica_that_owns_a_scan_dies_another_takes_it(tmp_path) -> None:
    from replica.rendezvous import ranked

    cluster = LocalCluster(str(tmp_path / "data"), replicas=3).start()
    try:
        with cluster.client() as admin:
            archive = osv_zip(tmp_path / "Debian.zip", [ADVISORIES[0]])
            with open(archive, "rb") as f:
                r = admin.put(
                    "/api/v0/scan/database/Debian",
                    content=f.read(),
                    headers={"Content-Type": "application/zip"},
                )
            assert r.status_code == 201, r.text
        base = Blob(
            OCI_LAYER,
            layer_tar(
                {"etc/os-release": BOOKWORM, "var/lib/dpkg/status": _old_libssl3(STATUS).encode()}
            ),
        )
        config, manifest = image_of([base], label="takeover")
        members = [f"replica-{i}" for i in range(3)]
        order = ranked(manifest.digest, members)
        owner = int(order[0].split("-")[1])
        # Pushed to the last in the order: only the second in line may take the scan.
        pusher = int(order[2].split("-")[1])
        cluster.sigkill(owner)  # the replica whose scan it is never does it
        layout = write_layout(str(tmp_path / "layout"), [config, base], manifest, "v1")
        host = cluster.urls[pusher].split("://")[1]
        deadline = time.monotonic() + 30
        while True:  # a push right after a kill may meet an election: retry as clients do
            try:
                skopeo(
                    "copy",
                    "--dest-tls-verify=false",
                    f"oci:{layout}:v1",
                    f"docker://{host}/lib/taken:v1",
                )
                break
            except AssertionError:
                assert time.monotonic() < deadline
                time.sleep(1)
        with cluster.client(pusher) as client:
            report = wait_report(client, "lib/taken/tags/v1", timeout=90)
        assert report["scanned_by"] == order[1]
        assert [f["vulnerability"] for f in report["findings"]] == ["DSA-5532-1"]
    finally:
        cluster.stop()
