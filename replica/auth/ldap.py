"""The LDAP / Active Directory client: find a user with the service account, verify a
password by binding as the user, list users and groups for the sync.

Blocking (ldap3); callers run it in a bounded pool. Every connection is TLS (LDAPS or
StartTLS, the certificate checked against the configured CA) unless the settings say
`allow_plain`. No user's password is kept: it is only ever sent in the user's bind.
"""

from __future__ import annotations

import contextlib
import re
import ssl
from collections.abc import Iterator
from dataclasses import dataclass

import ldap3
from ldap3.core import exceptions as ldap_errors
from ldap3.utils.conv import escape_filter_chars

from proto import commands_pb2 as pb

_TIMEOUT_S = 5
_PAGE = 500
# Registry account names: what a directory name must become to sign in.
_NAME = re.compile(r"[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?")


class DirectoryUnavailable(Exception):
    """The directory did not answer, or refused the service account: not the user's fault."""


class DirectoryMisconfigured(DirectoryUnavailable):
    """The settings cannot work (a plain ldap:// URL without allow_plain, a bad filter)."""


@dataclass(frozen=True)
class DirectoryUser:
    name: str  # the registry account name (lower case)
    dn: str


def account_name(value: str) -> str | None:
    """The registry name of a directory user name, or None if it cannot be one."""
    name = value.strip().lower()
    return name if _NAME.fullmatch(name) else None


class LdapDirectory:
    def __init__(self, settings: pb.LdapSettings, bind_password: str) -> None:
        self.settings = settings
        self._bind_password = bind_password
        url = settings.url.lower()
        if not url.startswith(("ldaps://", "ldap://")):
            raise DirectoryMisconfigured("the directory URL must start with ldaps:// or ldap://")
        if url.startswith("ldap://") and not settings.start_tls and not settings.allow_plain:
            raise DirectoryMisconfigured(
                "ldap:// sends passwords in the clear: use ldaps://, StartTLS, or allow "
                "plain LDAP explicitly"
            )
        tls = None
        if url.startswith("ldaps://") or settings.start_tls:
            tls = ldap3.Tls(
                validate=ssl.CERT_REQUIRED,
                ca_certs_data=settings.ca_pem or None,
                version=ssl.PROTOCOL_TLS_CLIENT,
            )
        self._server = ldap3.Server(settings.url, tls=tls, connect_timeout=_TIMEOUT_S)
        self._attribute = settings.username_attribute or "uid"
        self._filter = settings.user_filter or "(objectClass=person)"

    def _connect(self, dn: str, password: str) -> ldap3.Connection:
        """A bound connection; raises ldap_errors.LDAPBindError on wrong credentials."""
        conn = ldap3.Connection(
            self._server,
            dn,
            password,
            receive_timeout=_TIMEOUT_S,
            raise_exceptions=False,
            read_only=True,
        )
        try:
            try:
                if not conn.open() and conn.closed:
                    raise DirectoryUnavailable(f"cannot reach {self.settings.url}")
                if self.settings.start_tls and not self.settings.url.lower().startswith("ldaps://"):
                    conn.start_tls()
                if not conn.bind():
                    raise ldap_errors.LDAPBindError(conn.result.get("description", "refused"))
            except BaseException:
                _close(conn)
                raise
        except (ldap_errors.LDAPSocketOpenError, ldap_errors.LDAPSocketReceiveError) as e:
            raise DirectoryUnavailable(f"cannot reach {self.settings.url}: {e}") from None
        except ldap_errors.LDAPStartTLSError as e:
            raise DirectoryUnavailable(f"StartTLS with {self.settings.url} failed: {e}") from None
        except ldap_errors.LDAPBindError:
            raise
        except ldap_errors.LDAPException as e:
            raise DirectoryUnavailable(f"{self.settings.url}: {e}") from None
        return conn

    def _service(self) -> ldap3.Connection:
        try:
            return self._connect(self.settings.bind_dn, self._bind_password)
        except ldap_errors.LDAPBindError as e:
            raise DirectoryUnavailable(f"the service account's bind was refused: {e}") from None

    def _search(
        self, conn: ldap3.Connection, base: str, query: str, attributes: list[str], scope: str
    ) -> Iterator[tuple[str, dict[str, list[str]]]]:
        try:
            entries = conn.extend.standard.paged_search(
                base,
                query,
                search_scope=scope,
                attributes=attributes,
                paged_size=_PAGE,
                generator=True,
            )
            for entry in entries:
                if entry.get("type") == "searchResEntry":
                    yield entry["dn"], {k: _strings(v) for k, v in entry["attributes"].items()}
        except ldap_errors.LDAPInvalidFilterError as e:
            raise DirectoryMisconfigured(f"the user filter is not valid LDAP: {e}") from None
        except ldap_errors.LDAPException as e:
            raise DirectoryUnavailable(f"searching {base}: {e}") from None
        if conn.result and conn.result.get("result") not in (0, None):
            if conn.result.get("description") != "noSuchObject":
                raise DirectoryUnavailable(f"searching {base}: {conn.result.get('description')}")

    def find(self, conn: ldap3.Connection, name: str) -> DirectoryUser | None:
        query = f"(&{self._filter}({self._attribute}={escape_filter_chars(name)}))"
        found = list(
            self._search(conn, self.settings.user_base_dn, query, [self._attribute], ldap3.SUBTREE)
        )
        if len(found) != 1:
            return None  # unknown, or ambiguous: never guess which one
        return DirectoryUser(name, found[0][0])

    def authenticate(self, name: str, password: str) -> tuple[DirectoryUser, bool] | None:
        """(the user, whether an administrator) if the password is theirs, else None."""
        if not password or account_name(name) != name:
            return None  # an empty password would be an anonymous bind, which succeeds
        with self.connection() as conn:
            user = self.find(conn, name)
            admin = bool(user) and self._in_group(conn, self.settings.admin_group_dn, user)
        if user is None:
            return None
        try:
            self._connect(user.dn, password).unbind()
        except ldap_errors.LDAPBindError:
            return None
        return user, admin

    def _in_group(self, conn: ldap3.Connection, group: str, user: DirectoryUser | None) -> bool:
        if not group or user is None:
            return False
        return user.dn.lower() in {dn.lower() for dn in self.members(conn, group)}

    def users(self, conn: ldap3.Connection) -> list[DirectoryUser]:
        """Every user the filter finds whose name can be a registry account name."""
        out = []
        entries = self._search(
            conn, self.settings.user_base_dn, self._filter, [self._attribute], ldap3.SUBTREE
        )
        for dn, attributes in entries:
            values = attributes.get(self._attribute, [])
            name = account_name(values[0]) if values else None
            if name:
                out.append(DirectoryUser(name, dn))
        return out

    def members(self, conn: ldap3.Connection, group: str) -> list[str]:
        """The member DNs of a group (an unknown group has none)."""
        attribute = self.settings.member_attribute or "member"
        found = list(self._search(conn, group, "(objectClass=*)", [attribute], ldap3.BASE))
        return found[0][1].get(attribute, []) if found else []

    @contextlib.contextmanager
    def connection(self) -> Iterator[ldap3.Connection]:
        """A connection bound as the service account, closed after use (ldap3's own
        `with` leaves a connection open when it was bound before)."""
        conn = self._service()
        try:
            yield conn
        finally:
            conn.unbind()


def _close(conn: ldap3.Connection) -> None:
    """Close a connection that failed half-way (ldap3 leaves its socket open)."""
    try:
        conn.unbind()
    except ldap_errors.LDAPException:
        pass
    socket = getattr(conn, "socket", None)
    if socket is not None:
        socket.close()


def _strings(value: object) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value]
    return [str(value)] if value not in (None, "") else []
