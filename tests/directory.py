"""A real OpenLDAP server for tests: Debian's slapd on loopback, LDAPS with a test CA,
its own configuration and a small directory of people and groups.

    dc=example,dc=org
      ou=people   uid=<name>  (inetOrgPerson, userPassword, mail)
      ou=groups   cn=<group>  (groupOfNames, member: people's DNs)
      ou=services cn=registry (the registry's service account: reads, cannot write)
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import ldap3

from cli import ports
from replica import pki

BASE = "dc=example,dc=org"
PEOPLE = f"ou=people,{BASE}"
GROUPS = f"ou=groups,{BASE}"
SERVICE_DN = f"cn=registry,ou=services,{BASE}"
SERVICE_PASSWORD = "service-secret-42"
ROOT_DN = f"cn=admin,{BASE}"
ROOT_PASSWORD = "root-secret-42"


def slapd_binary() -> str:
    return shutil.which("slapd") or "/usr/sbin/slapd"


def person_dn(name: str) -> str:
    return f"uid={name},{PEOPLE}"


def group_dn(name: str) -> str:
    return f"cn={name},{GROUPS}"


def _entry(dn: str, attributes: dict[str, str | list[str]]) -> str:
    lines = [f"dn: {dn}"]
    for name, values in attributes.items():
        for value in [values] if isinstance(values, str) else values:
            lines.append(f"{name}: {value}")
    return "\n".join(lines) + "\n\n"


def directory_ldif(people: dict[str, str], groups: dict[str, list[str]]) -> str:
    """The LDIF of a directory: `people` maps a uid to its password, `groups` a group's
    cn to the uids of its members."""
    out = [
        _entry(BASE, {"objectClass": ["dcObject", "organization"], "dc": "example", "o": "Ex"}),
        _entry(PEOPLE, {"objectClass": "organizationalUnit", "ou": "people"}),
        _entry(GROUPS, {"objectClass": "organizationalUnit", "ou": "groups"}),
        _entry(f"ou=services,{BASE}", {"objectClass": "organizationalUnit", "ou": "services"}),
        _entry(
            SERVICE_DN,
            {
                "objectClass": ["organizationalRole", "simpleSecurityObject"],
                "cn": "registry",
                "userPassword": SERVICE_PASSWORD,
            },
        ),
    ]
    for name, password in people.items():
        out.append(_entry(person_dn(name), _person(name, password)))
    for name, members in groups.items():
        out.append(_entry(group_dn(name), _group(name, members)))
    return "".join(out)


def _person(name: str, password: str) -> dict[str, str | list[str]]:
    return {
        "objectClass": "inetOrgPerson",
        "uid": name,
        "cn": name.title(),
        "sn": name,
        "mail": f"{name}@example.org",
        "userPassword": password,
    }


def _group(name: str, members: Iterable[str]) -> dict[str, str | list[str]]:
    # groupOfNames needs a member: the service account stands in for an empty group.
    return {
        "objectClass": "groupOfNames",
        "cn": name,
        "member": [person_dn(m) for m in members] or [SERVICE_DN],
    }


@dataclass
class Slapd:
    """slapd on two loopback ports: LDAPS (`url`) and plain LDAP (`plain_url`, for
    StartTLS and the explicitly insecure mode)."""

    directory: str
    people: dict[str, str] = field(default_factory=dict)
    groups: dict[str, list[str]] = field(default_factory=dict)
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    ca_pem: bytes = b""

    @property
    def url(self) -> str:
        return f"ldaps://127.0.0.1:{self.port}"

    @property
    def plain_url(self) -> str:
        return f"ldap://127.0.0.1:{self.port + 1}"

    @property
    def ca_file(self) -> str:
        return os.path.join(self.directory, "ca.pem")

    def _configure(self) -> str:
        d = self.directory
        os.makedirs(os.path.join(d, "db"), exist_ok=True)
        ca, ca_key = pki.create_ca("Test Directory")
        cert, key = pki.issue(ca, ca_key, "127.0.0.1", ["127.0.0.1", "localhost"])
        self.ca_pem = ca
        for name, data in (("ca.pem", ca), ("server.pem", cert), ("server.key", key)):
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
        conf = os.path.join(d, "slapd.conf")
        schema = "/etc/ldap/schema"
        with open(conf, "w") as f:
            f.write(
                "".join(
                    f"include {schema}/{s}.schema\n" for s in ("core", "cosine", "inetorgperson")
                )
                + f"pidfile {d}/slapd.pid\nargsfile {d}/slapd.args\n"
                "modulepath /usr/lib/ldap\nmoduleload back_mdb\n"
                f"TLSCACertificateFile {d}/ca.pem\nTLSCertificateFile {d}/server.pem\n"
                f"TLSCertificateKeyFile {d}/server.key\n"
                "sizelimit unlimited\n"
                "database mdb\nmaxsize 1073741824\n"
                f'suffix "{BASE}"\nrootdn "{ROOT_DN}"\nrootpw {ROOT_PASSWORD}\n'
                f"directory {d}/db\nindex objectClass,uid,cn,member eq\n"
                "access to attrs=userPassword by self write by anonymous auth by * none\n"
                "access to * by * read\n"
            )
        return conf

    def start(self) -> Slapd:
        fresh = not self.port
        if fresh:
            self.port = ports.free_block(2)
            conf = self._configure()
            with open(os.path.join(self.directory, "data.ldif"), "w") as f:
                f.write(directory_ldif(self.people, self.groups))
            subprocess.run(
                [slapd_binary().replace("slapd", "slapadd"), "-q", "-f", conf,
                 "-l", os.path.join(self.directory, "data.ldif")],
                check=True, capture_output=True,
            )  # fmt: skip
        conf = os.path.join(self.directory, "slapd.conf")
        log = open(os.path.join(self.directory, "slapd.log"), "ab")
        self.process = subprocess.Popen(
            [slapd_binary(), "-f", conf, "-d", "0", "-h", f"{self.url}/ {self.plain_url}/"],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"slapd exited: see {self.directory}/slapd.log")
            try:
                socket.create_connection(("127.0.0.1", self.port + 1), timeout=1).close()
            except OSError:
                time.sleep(0.1)
                continue
            with self.admin():
                return self
        raise TimeoutError("slapd did not come up in 30 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None

    @contextlib.contextmanager
    def admin(self) -> Iterator[ldap3.Connection]:
        """A connection bound as the directory's root, over the plain port."""
        server = ldap3.Server(self.plain_url, connect_timeout=2)
        conn = ldap3.Connection(server, ROOT_DN, ROOT_PASSWORD, auto_bind=True)
        try:
            yield conn
        finally:
            conn.unbind()

    # ---- changing the directory while the registry runs -----------------------------

    def add_person(self, name: str, password: str) -> None:
        with self.admin() as conn:
            attributes = _person(name, password)
            classes = attributes.pop("objectClass")
            assert conn.add(person_dn(name), classes, attributes), conn.result

    def remove_person(self, name: str) -> None:
        with self.admin() as conn:
            assert conn.delete(person_dn(name)), conn.result

    def set_members(self, group: str, members: list[str]) -> None:
        with self.admin() as conn:
            dns = [person_dn(m) for m in members] or [SERVICE_DN]
            assert conn.modify(group_dn(group), {"member": [(ldap3.MODIFY_REPLACE, dns)]}), (
                conn.result
            )
