"""Scanning's parts with real package metadata and real advisories in OSV's published
format: inventories of layers (whiteouts included), each ecosystem's version order,
and which packages each record affects."""

from __future__ import annotations

import io
import json
import subprocess
import zipfile

import pytest

from replica.scan import layers, matching, versions
from replica.scan.osv import OsvIndex
from tests.images import layer_tar

# This machine's own dpkg entry of libssl3, as an older bookworm image had it.
LIBSSL3 = subprocess.run(
    ["dpkg-query", "-s", "libssl3"], capture_output=True, text=True, check=True
).stdout
OLD_LIBSSL3 = "\n".join(
    "Version: 3.0.9-1" if line.startswith("Version:") else line for line in LIBSSL3.splitlines()
)
BOOKWORM = b'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n'
ALPINE = b"ID=alpine\nVERSION_ID=3.18.4\n"
APK_INSTALLED = (
    "C:Q1abc=\nP:libcrypto3\nV:3.1.3-r0\nA:x86_64\no:openssl\n\n"
    "C:Q1def=\nP:musl\nV:1.2.4-r2\nA:x86_64\no:musl\n\n"
)


def record(id_: str, ecosystem: str, name: str, events: list[dict], **extra: object) -> dict:
    return {
        "schema_version": "1.6.0",
        "id": id_,
        "modified": "2024-01-01T00:00:00Z",
        "affected": [
            {
                "package": {"ecosystem": ecosystem, "name": name},
                "ranges": [
                    {"type": "ECOSYSTEM" if ecosystem != "npm" else "SEMVER", "events": events}
                ],
            }
        ],
        **extra,
    }


# Real advisories, their real affected ranges.
ADVISORIES = [
    record(
        "DSA-5532-1",
        "Debian:12",
        "openssl",
        [{"introduced": "0"}, {"fixed": "3.0.11-1~deb12u2"}],
        aliases=["CVE-2023-5363"],
        severity=[{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"}],
    ),
    record(
        "DSA-5417-1",
        "Debian:11",
        "openssl",
        [{"introduced": "0"}, {"fixed": "1.1.1n-0+deb11u5"}],
    ),
    record(
        "ALPINE-CVE-2023-5363",
        "Alpine:v3.18",
        "openssl",
        [{"introduced": "0"}, {"fixed": "3.1.4-r0"}],
        aliases=["CVE-2023-5363"],
    ),
    record(
        "GHSA-j8r2-6x86-q33q",
        "PyPI",
        "requests",
        [{"introduced": "2.3.0"}, {"fixed": "2.31.0"}],
        aliases=["CVE-2023-32681"],
        database_specific={"severity": "MODERATE"},
    ),
    record(
        "GHSA-xvch-5gv4-984h",
        "npm",
        "minimist",
        [{"introduced": "0"}, {"fixed": "0.2.4"}, {"introduced": "1.0.0"}, {"fixed": "1.2.6"}],
        aliases=["CVE-2021-44906"],
        database_specific={"severity": "CRITICAL"},
    ),
    record(
        "GHSA-withdrawn-example",
        "PyPI",
        "requests",
        [{"introduced": "0"}],
        withdrawn="2023-06-01T00:00:00Z",
    ),
]


@pytest.fixture
def index(tmp_path) -> OsvIndex:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        for r in ADVISORIES:
            z.writestr(f"{r['id']}.json", json.dumps(r))
        z.writestr("not-osv.json", "[1, 2]")
    archive.seek(0)
    built = OsvIndex(str(tmp_path / "index"))
    report = built.build([archive])
    assert report.records == 5 and report.withdrawn == 1 and report.skipped == 1
    return built


def inventory(files: dict[str, bytes]) -> dict:
    return layers.inventory(io.BytesIO(layer_tar(files)))


def findings(index: OsvIndex, *stacked: dict) -> dict[tuple[str, str], str]:
    found, release = layers.stack(list(stacked))
    return {(f.package, f.vulnerability): f.fixed for f in matching.match(index, found, release)}


def test_an_old_debian_library_is_found_and_the_current_one_is_not(index) -> None:
    base = {"etc/os-release": BOOKWORM}
    old = findings(index, inventory({**base, "var/lib/dpkg/status": OLD_LIBSSL3.encode()}))
    assert old == {("libssl3", "DSA-5532-1"): "3.0.11-1~deb12u2"}  # not Debian 11's record
    current = findings(index, inventory({**base, "var/lib/dpkg/status": LIBSSL3.encode()}))
    assert current == {}
    packages, release = layers.stack([inventory({**base, "var/lib/dpkg/status": LIBSSL3.encode()})])
    assert release == {"ID": "debian", "VERSION_ID": "12"}
    assert [(p.name, p.source) for p in packages] == [("libssl3", "openssl")]


def test_alpine_python_and_npm_packages(index) -> None:
    files = {
        "etc/os-release": ALPINE,
        "lib/apk/db/installed": APK_INSTALLED.encode(),
        "usr/lib/python3.11/site-packages/requests-2.28.1.dist-info/METADATA": (
            b"Metadata-Version: 2.1\nName: requests\nVersion: 2.28.1\n"
        ),
        "usr/lib/python3.11/site-packages/six-1.16.0.dist-info/METADATA": (
            b"Metadata-Version: 2.1\nName: six\nVersion: 1.16.0\n"
        ),
        "app/node_modules/minimist/package.json": b'{"name": "minimist", "version": "1.2.5"}',
        "app/node_modules/old/node_modules/minimist/package.json": (
            b'{"name": "minimist", "version": "0.2.4"}'
        ),
    }
    assert findings(index, inventory(files)) == {
        ("libcrypto3", "ALPINE-CVE-2023-5363"): "3.1.4-r0",
        ("requests", "GHSA-j8r2-6x86-q33q"): "2.31.0",
        ("minimist", "GHSA-xvch-5gv4-984h"): "1.2.6",  # 0.2.4 is the first fixed version
    }
    fixed = {**files}
    fixed["usr/lib/python3.11/site-packages/requests-2.28.1.dist-info/METADATA"] = (
        b"Metadata-Version: 2.1\nName: requests\nVersion: 2.31.0\n"
    )
    assert ("requests", "GHSA-j8r2-6x86-q33q") not in findings(index, inventory(fixed))


def test_a_package_removed_in_an_upper_layer_is_not_reported(index) -> None:
    dist = "usr/lib/python3.11/site-packages/requests-2.28.1.dist-info"
    lower = inventory(
        {"etc/os-release": BOOKWORM, f"{dist}/METADATA": b"Name: requests\nVersion: 2.28.1\n"}
    )
    assert findings(index, lower) == {("requests", "GHSA-j8r2-6x86-q33q"): "2.31.0"}
    whiteout = inventory({"usr/lib/python3.11/site-packages/.wh.requests-2.28.1.dist-info": b""})
    assert findings(index, lower, whiteout) == {}
    opaque = inventory({"usr/lib/python3.11/site-packages/.wh..wh..opq": b""})
    assert findings(index, lower, opaque) == {}
    # A higher layer's dpkg status replaces the lower one.
    upper = inventory({"var/lib/dpkg/status": LIBSSL3.encode()})
    old = inventory({"etc/os-release": BOOKWORM, "var/lib/dpkg/status": OLD_LIBSSL3.encode()})
    assert findings(index, old, upper) == {}


def test_severities_come_from_the_label_or_the_cvss_vector(index) -> None:
    entry = index.lookup("Debian:12", "openssl")[0]
    assert entry["severity"] == "high"  # CVSS 7.5
    assert index.lookup("npm", "minimist")[0]["severity"] == "critical"
    assert index.lookup("PyPI", "requests")[0]["severity"] == "medium"  # MODERATE


@pytest.mark.parametrize(
    ("ecosystem", "older", "newer"),
    [
        ("Debian:12", "3.0.11-1~deb12u1", "3.0.11-1~deb12u2"),
        ("Debian:12", "1.0-1", "1:0.9-1"),
        ("Debian:12", "2.36-9+deb12u3", "2.36-9+deb12u10"),
        ("Alpine:v3.18", "3.1.3-r0", "3.1.4-r0"),
        ("Alpine:v3.18", "1.2.3_rc1", "1.2.3"),
        ("Alpine:v3.18", "1.2.3", "1.2.3_p1"),
        ("Alpine:v3.18", "3.0.9-r3", "3.0.10-r0"),
        ("PyPI", "2.31.0rc1", "2.31.0"),
        ("PyPI", "1.0.post1", "1.1"),
        ("npm", "1.0.0-alpha.1", "1.0.0-alpha.beta"),
        ("npm", "1.2.9", "1.2.10"),
        ("npm", "1.0.0-rc.1", "1.0.0"),
    ],
)
def test_each_ecosystem_orders_versions_as_its_package_manager(ecosystem, older, newer) -> None:
    assert versions.compare(ecosystem, older, newer) == -1
    assert versions.compare(ecosystem, newer, older) == 1
    assert versions.compare(ecosystem, newer, newer) == 0


def test_debian_order_agrees_with_dpkg_itself() -> None:
    pairs = [
        ("1.0", "1.0-1"),
        ("1.0~rc1", "1.0"),
        ("1:1.0", "2.0"),
        ("1.0+dfsg-1", "1.0-1"),
        ("2.36-9+deb12u3", "2.36-9+deb12u10"),
        ("3.0.11-1~deb12u2", "3.0.11-1"),
        ("1.2.3a", "1.2.3"),
        ("0.9.8zh-1", "0.9.8-1"),
    ]
    for a, b in pairs:
        dpkg_says = subprocess.run(["dpkg", "--compare-versions", a, "lt", b]).returncode == 0
        assert (versions.compare("Debian:12", a, b) < 0) == dpkg_says, (a, b)
