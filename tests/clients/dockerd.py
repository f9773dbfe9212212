"""A dockerd of a test's own: its data root, socket and pid file under the test's
directory, and the docker CLI pointed at it with its own config directory.

dockerd reads registry CAs only from /etc/docker/certs.d/HOST:PORT/ca.crt. To trust a
test cluster's CA without touching the machine's, dockerd runs in a private mount
namespace where /etc/docker is a tmpfs holding only the test's certs.d."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import time

import pytest


class Docker:
    def __init__(
        self,
        root: str,
        insecure: list[str] | None = None,
        trusted_cas: dict[str, str] | None = None,
    ) -> None:
        """`insecure`: registries spoken to over plain HTTP; `trusted_cas`: HOST:PORT ->
        the CA file dockerd (and the CLI's content trust) verify that registry with."""
        if shutil.which("dockerd") is None:
            pytest.fail("dockerd is not installed; the test command installs docker.io")
        self.root = root
        # Unix socket paths end at 108 bytes, and a test's directory can be that long:
        # the sockets (dockerd's and containerd's, under the exec root) go somewhere short.
        self.short = tempfile.mkdtemp(prefix="qd-", dir="/tmp")
        self.socket = os.path.join(self.short, "docker.sock")
        self.config = os.path.join(root, "config")
        self.env = {**os.environ, "DOCKER_CONFIG": self.config}
        os.makedirs(self.config, exist_ok=True)
        command = [
            "dockerd",
            "--storage-driver=vfs",
            f"--data-root={root}/data",
            f"--exec-root={self.short}/exec",
            f"--host=unix://{self.socket}",
            f"--pidfile={root}/docker.pid",
            "--iptables=false",
            "--bridge=none",
            *(f"--insecure-registry={r}" for r in insecure or []),
        ]
        if trusted_cas:
            setup = ["mount -t tmpfs qreg-test-docker /etc/docker"]
            for host, ca in trusted_cas.items():
                directory = shlex.quote(f"/etc/docker/certs.d/{host}")
                setup.append(f"mkdir -p {directory} && cp {shlex.quote(ca)} {directory}/ca.crt")
                # The CLI's content trust (notary) reads its CA from the config directory.
                tls = os.path.join(self.config, "tls", host)
                os.makedirs(tls, exist_ok=True)
                shutil.copy(ca, os.path.join(tls, "ca.crt"))
            script = " && ".join([*setup, "exec " + shlex.join(command)])
            command = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script]
        self.log = open(os.path.join(root, "dockerd.log"), "wb")
        self.process = subprocess.Popen(command, stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 30
        while self.run("version", check=False).returncode != 0:
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                with open(self.log.name) as log:
                    pytest.skip("dockerd cannot run here: " + log.read()[-500:])
            time.sleep(0.3)

    def run(
        self,
        *args: str,
        check: bool = True,
        stdin: str | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 180,
    ) -> subprocess.CompletedProcess:
        done = subprocess.run(
            ["docker", f"--host=unix://{self.socket}", *args],
            capture_output=True,
            text=True,
            env={**self.env, **(env or {})},
            input=stdin,
            timeout=timeout,
        )
        if check:
            assert done.returncode == 0, f"docker {' '.join(args)}: {done.stderr}"
        return done

    def import_tar(self, files: dict[str, str], reference: str, workdir: str) -> str:
        """An image of these files (`docker import`: no base image needed); its id."""
        for name, content in files.items():
            path = os.path.join(workdir, name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write(content)
        tar = subprocess.run(["tar", "-C", workdir, "-c", "."], capture_output=True, check=True)
        done = subprocess.run(
            ["docker", f"--host=unix://{self.socket}", "import", "-", reference],
            input=tar.stdout,
            capture_output=True,
            env=self.env,
            check=True,
        )
        return done.stdout.decode().strip()

    def stop(self) -> None:
        if self.process.poll() is None:
            # SIGTERM reaches dockerd itself (sh exec'd it), which stops its containerd.
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.log.close()
        # dockerd leaves mounts behind (its network namespace, layer mounts): without
        # them gone, the directories cannot be deleted afterwards.
        with open("/proc/mounts") as f:
            mounted = [line.split()[1] for line in f]
        for point in sorted(mounted, reverse=True):
            if point.startswith((self.root, self.short)):
                subprocess.run(["umount", "-l", point], capture_output=True)
        shutil.rmtree(self.short, ignore_errors=True)
