"""The account commands of `qreg`, run as a user would, against a real cluster over
HTTPS; what they set up is then checked with skopeo."""

from __future__ import annotations

import os

import pytest

from tests.clients.tools import skopeo
from tests.cluster import LocalCluster
from tests.images import image_layout
from tests.qreg_cli import qreg

pytestmark = pytest.mark.slow


def test_accounts_from_the_command_line(tmp_path) -> None:
    cluster = LocalCluster(str(tmp_path / "data"), tls=True).start()
    env = {**os.environ, "QREG_LOGIN_FILE": str(tmp_path / "login.json")}
    certs = tmp_path / "certs"
    certs.mkdir()
    (certs / "ca.crt").write_bytes((tmp_path / "data" / "ca.crt").read_bytes())
    layout, _ = image_layout(str(tmp_path / "layout"), "cli", layers=1)

    def push(creds: str, repo: str) -> None:
        skopeo(
            "copy",
            "--dest-cert-dir",
            str(certs),
            "--dest-creds",
            creds,
            f"oci:{layout}:latest",
            f"docker://{cluster.host}/{repo}:1",
        )

    try:
        # A wrong password is refused and nothing is kept.
        err = qreg(
            "login",
            cluster.url,
            "-u",
            "admin",
            "--ca",
            cluster.ca,
            "--password-stdin",
            stdin="wrong\n",
            env=env,
            ok=False,
        )
        assert "UNAUTHORIZED" in err and not os.path.exists(env["QREG_LOGIN_FILE"])
        assert "not signed in" in qreg("user", "list", env=env, ok=False)
        qreg(
            "login",
            cluster.url,
            "-u",
            "admin",
            "--ca",
            cluster.ca,
            "--password-stdin",
            stdin=cluster.admin_password + "\n",
            env=env,
        )
        with open(env["QREG_LOGIN_FILE"]) as f:
            assert cluster.admin_password not in f.read()
        assert os.stat(env["QREG_LOGIN_FILE"]).st_mode & 0o077 == 0

        qreg("user", "add", "orca", "--password-stdin", stdin="orca-password\n", env=env)
        qreg(
            "user",
            "add",
            "moby",
            "--role",
            "read-only",
            "--password-stdin",
            stdin="moby-password\n",
            env=env,
        )
        qreg("org", "add", "engineering", env=env)
        qreg("team", "add", "engineering", "core", env=env)
        members = qreg("team", "members", "engineering", "core", "--add", "orca", env=env)
        assert "orca" in members.split()
        qreg("repo", "add", "engineering/barca", env=env)
        qreg("team", "grant", "engineering", "core", "engineering/barca", "read-write", env=env)
        listed = qreg("repo", "list", env=env)
        assert "engineering/barca" in listed and "engineering/core: read-write" in listed
        users = qreg("user", "list", env=env)
        assert "moby" in users and "read-only" in users and "organization" in users

        push("orca:orca-password", "engineering/barca")  # through the team
        with pytest.raises(AssertionError, match="(?i)unauthorized|denied"):
            push("moby:moby-password", "engineering/barca")  # read-only on all

        # moby signs in with a personal access token and makes one for CI.
        qreg(
            "login",
            cluster.url,
            "-u",
            "moby",
            "--ca",
            cluster.ca,
            "--password-stdin",
            stdin="moby-password\n",
            env=env,
        )
        err = qreg(
            "user", "add", "eve", "--password-stdin", stdin="eve-password\n", env=env, ok=False
        )
        assert "DENIED" in err
        created = qreg("token", "create", "pipeline", "--days", "7", env=env)
        pat = created.split()[-1]
        token_id = created.split()[1]
        assert token_id in qreg("token", "list", env=env)
        skopeo(
            "inspect",
            "--cert-dir",
            str(certs),
            "--creds",
            f"moby:{pat}",
            f"docker://{cluster.host}/engineering/barca:1",
        )
        qreg("token", "revoke", token_id, env=env)
        with pytest.raises(AssertionError, match="(?i)unauthorized|denied"):
            skopeo(
                "inspect",
                "--cert-dir",
                str(certs),
                "--creds",
                f"moby:{pat}",
                f"docker://{cluster.host}/engineering/barca:1",
            )

        # A changed password voids the session kept by login.
        # Your own password: the current one first, then the new one.
        qreg(
            "user",
            "passwd",
            "moby",
            "--password-stdin",
            stdin="moby-password\nmoby-new-password\n",
            env=env,
        )
        assert "login again" in qreg("token", "list", env=env, ok=False)
        qreg(
            "login",
            cluster.url,
            "-u",
            "admin",
            "--ca",
            cluster.ca,
            "--password-stdin",
            stdin=cluster.admin_password + "\n",
            env=env,
        )
        qreg("repo", "visibility", "engineering/barca", "public", env=env)
        skopeo(
            "inspect",
            "--cert-dir",
            str(certs),
            "--no-creds",
            f"docker://{cluster.host}/engineering/barca:1",
        )
        # Caches: registered, listed with their health, chosen per user, removed.
        qreg(
            "cache",
            "add",
            "--name",
            "eu",
            "--url",
            "https://127.0.0.1:9",
            "--region",
            "europe",
            env=env,
        )
        assert "ALREADY_EXISTS" in qreg(
            "cache", "add", "--name", "eu", "--url", "https://127.0.0.1:9", env=env, ok=False
        )
        qreg("user", "set-cache", "orca", "moby", "eu", env=env)
        listed = qreg("cache", "list", env=env)
        assert "eu" in listed and "europe" in listed and "cluster" in listed
        qreg("user", "set-cache", "orca", "none", env=env)
        qreg("cache", "remove", "eu", env=env)
        assert "eu" not in qreg("cache", "list", env=env).split()
        qreg("user", "remove", "orca", env=env)
        assert "orca" not in qreg("user", "list", env=env).split()
    finally:
        cluster.stop()
