"""The cluster's directory as a replica uses it: password logins in ldap mode (an
account made on first login), the sync that keeps directory accounts and teams in step,
and `ldap test`.

The sync reads the whole directory with the service account, compares it with the
state, and proposes only what changed, in batches (SyncDirectory): users created,
deactivated (gone from the directory: their tokens stop at once), reactivated, their
admin role from the admin group; each team that follows a group gets the group's
members. The leader runs it every `sync_interval_s`; anyone may ask any replica to run
it now. A directory that does not answer changes nothing; the next run retries.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from cryptography.exceptions import InvalidTag

from consensus import MetadataState, accounts, directory
from proto import commands_pb2 as pb
from replica.auth.ldap import DirectoryMisconfigured, DirectoryUnavailable, LdapDirectory
from replica.auth.login_guard import HashingPool
from replica.sealing import Sealer

log = logging.getLogger("qreg.auth")

_BATCH = 500  # users per SyncDirectory command (~50 KB): a Raft entry stays small
_RETRY_S = 30.0

T = TypeVar("T")
Propose = Callable[[pb.Command], Awaitable[object]]


@dataclass
class SyncReport:
    at_ms: int = 0
    seconds: float = 0.0
    directory_users: int = 0
    created: list[str] = field(default_factory=list)
    deactivated: list[str] = field(default_factory=list)
    reactivated: list[str] = field(default_factory=list)
    roles_changed: list[str] = field(default_factory=list)
    teams: int = 0
    error: str = ""

    def json(self) -> dict[str, Any]:
        def few(names: list[str]) -> dict[str, Any]:
            return {"count": len(names), "names": names[:50]}

        return {
            "at_ms": self.at_ms,
            "seconds": round(self.seconds, 3),
            "directory_users": self.directory_users,
            "created": few(self.created),
            "deactivated": few(self.deactivated),
            "reactivated": few(self.reactivated),
            "roles_changed": few(self.roles_changed),
            "teams": self.teams,
            "error": self.error,
        }


def sealer(secret: str) -> Sealer:
    return Sealer(secret, b"qreg directory bind password")


class Directory:
    def __init__(self, state: MetadataState, propose: Propose, secret: str) -> None:
        self.state = state
        self._propose = propose
        self._sealer = sealer(secret)
        # Directory calls block on the network: a few threads, a bounded queue.
        self._pool = HashingPool(workers=4, max_pending=64)
        self._client: tuple[int, LdapDirectory] | None = None
        self.last: SyncReport | None = None
        self._syncing = asyncio.Lock()

    async def call(self, fn: Callable[..., T], *args: object) -> T:
        """Run a blocking directory call in the directory's own bounded pool."""
        return await self._pool.run(fn, *args)

    def seal(self, password: str) -> bytes:
        return self._sealer.seal(password.encode())

    def client(self, settings: pb.AuthSettings) -> LdapDirectory:
        """The directory of these settings (kept while the settings do not change)."""
        if self._client is not None and self._client[0] == settings.revision:
            return self._client[1]
        ldap = settings.ldap
        try:
            password = (
                self._sealer.open(ldap.sealed_bind_password).decode()
                if ldap.sealed_bind_password
                else ""
            )
        except InvalidTag:
            raise DirectoryMisconfigured(
                "the service account's password was sealed by another cluster: set it again"
            ) from None
        made = LdapDirectory(ldap, password)
        self._client = (settings.revision, made)
        return made

    # ---- logins ---------------------------------------------------------------------

    async def login(self, name: str, password: str) -> bool:
        """Whether the directory takes this password for `name`; the account is made
        (or reactivated, its role set) on the way. Raises DirectoryUnavailable."""
        account = self.state.view(accounts.account, name)
        if account is not None and (account.is_org or account.source != directory.LDAP):
            # Never a managed account or an organization: a directory entry named
            # "admin" must not become the cluster's admin.
            return False
        settings = self.state.view(directory.settings)
        found = await self.call(self.client(settings).authenticate, name, password)
        if found is None:
            return False
        user, admin = found
        account = self.state.view(accounts.account, name)
        set_role = bool(settings.ldap.admin_group_dn)
        stale = (
            account is None
            or account.deactivated
            or account.directory_dn != user.dn
            or (set_role and (account.global_role == "admin") != admin)
        )
        if stale:
            wanted = pb.DirectoryUser(
                name=name, dn=user.dn, active=True, set_role=set_role, admin=admin
            )
            await self._propose(
                pb.Command(
                    actor=name,
                    at_ms=_now_ms(),
                    sync_directory=pb.SyncDirectory(users=[wanted], at_ms=_now_ms()),
                )
            )
        return True

    # ---- the sync ---------------------------------------------------------------------

    async def sync(self, actor: str = "") -> SyncReport:
        async with self._syncing:
            started = time.monotonic()
            report = SyncReport(at_ms=_now_ms())
            try:
                settings = self.state.view(directory.settings)
                if not settings.ldap.url:
                    raise DirectoryMisconfigured("no directory is configured")
                found, teams = await self.call(self._read, settings)
                report.directory_users = len(found)
                commands = self._plan(settings, found, teams, report)
                for command in commands:
                    await self._propose(
                        pb.Command(actor=actor, at_ms=report.at_ms, sync_directory=command)
                    )
            except DirectoryUnavailable as e:
                report.error = str(e)
            report.seconds = time.monotonic() - started
            self.last = report
            return report

    def _read(
        self, settings: pb.AuthSettings
    ) -> tuple[dict[str, tuple[str, bool]], list[pb.DirectoryTeam]]:
        """{name: (dn, admin)} of every directory user, and each mapped team's members."""
        ldap = self.client(settings)
        with ldap.connection() as conn:
            users = ldap.users(conn)
            by_dn = {u.dn.lower(): u.name for u in users}
            admins = (
                {dn.lower() for dn in ldap.members(conn, settings.ldap.admin_group_dn)}
                if settings.ldap.admin_group_dn
                else set()
            )
            teams = []
            for org, team, group in self.state.view(directory.team_groups):
                members = sorted(
                    {by_dn[dn.lower()] for dn in ldap.members(conn, group) if dn.lower() in by_dn}
                )
                teams.append(pb.DirectoryTeam(org=org, team=team, members=members))
        return {u.name: (u.dn, u.dn.lower() in admins) for u in users}, teams

    def _plan(
        self,
        settings: pb.AuthSettings,
        found: dict[str, tuple[str, bool]],
        teams: list[pb.DirectoryTeam],
        report: SyncReport,
    ) -> list[pb.SyncDirectory]:
        known = self.state.view(directory.directory_accounts)
        if not found and known:
            # A wrong base DN or filter, or a directory answering half-way, looks like
            # everyone left: deactivate nobody on an empty answer.
            raise DirectoryUnavailable(
                f"the directory returned no users (the state has {len(known)}): check the "
                "user base DN and filter; nobody was deactivated"
            )
        set_role = bool(settings.ldap.admin_group_dn)
        changes: list[pb.DirectoryUser] = []
        for name, (dn, admin) in sorted(found.items()):
            account = known.get(name)
            if account is None:
                if self.state.view(accounts.account, name) is not None:
                    continue  # a managed account or an organization: never taken over
                report.created.append(name)
            elif account.deactivated:
                report.reactivated.append(name)
            elif set_role and (account.global_role == "admin") != admin:
                report.roles_changed.append(name)
            elif account.directory_dn == dn:
                continue
            changes.append(
                pb.DirectoryUser(name=name, dn=dn, active=True, set_role=set_role, admin=admin)
            )
        for name, account in sorted(known.items()):
            if name not in found and not account.deactivated:
                report.deactivated.append(name)
                changes.append(pb.DirectoryUser(name=name, dn=account.directory_dn, active=False))
        report.teams = len(teams)
        batches = [
            pb.SyncDirectory(users=changes[i : i + _BATCH], at_ms=report.at_ms)
            for i in range(0, len(changes), _BATCH)
        ]
        if teams:  # last, once every account they name exists
            batches.append(pb.SyncDirectory(teams=teams, at_ms=report.at_ms))
        return batches

    async def sync_forever(self, leads: Callable[[], bool]) -> None:
        """On the leader: sync every `sync_interval_s` (checked each minute, so a
        changed interval applies without a restart); retry a failed run sooner."""
        last_run = time.monotonic()
        failed = False
        while True:
            await asyncio.sleep(min(_RETRY_S, 60.0))
            settings = self.state.view(directory.settings)
            interval = settings.ldap.sync_interval_s
            due = time.monotonic() - last_run >= (_RETRY_S if failed else interval)
            if not settings.ldap.url or not interval or not due or not leads():
                continue
            last_run = time.monotonic()
            try:
                report = await self.sync()
            except Exception:
                log.exception("the directory sync failed; it runs again")
                failed = True
                continue
            failed = bool(report.error)
            if report.error:
                log.warning("the directory sync could not run: %s", report.error)
            else:
                log.info("directory sync: %s", report.json())

    def close(self) -> None:
        self._pool.close()


def _now_ms() -> int:
    return int(time.time() * 1000)
