"""Joining and removing replicas.

POST /api/v0/join            a join token buys the cluster secret, the member list and the CA
POST /api/v0/join-tokens     (administrators, cluster credentials) a join token for a new replica
POST /api/v0/join-tokens/revoke (cluster credentials) every join token issued so far stops working
POST /api/v0/members         (cluster credentials) make a Raft address that answers a voting
                             member; a joiner asks this itself once it runs (replica/joining.py)
DELETE /api/v0/replicas/{id} (cluster credentials) remove a replica, healthy or dead

GET /api/v0/snapshot         (cluster credentials) a snapshot taken now

A joiner starts from a snapshot taken moments before it starts, so it votes nearly
caught up: only the entries after the snapshot reach it
through Raft. (pysyncobj has no learner role: the new member votes at once.)
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterator

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from consensus import NoQuorum, accounts
from proto import commands_pb2 as pb
from replica import join_tokens, pki
from replica.api.cluster import require_operator
from replica.api.json_body import read_body
from replica.api.same_origin import refuse_cross_site
from replica.auth.service import client_address
from replica.context import context
from replica.errors import Denied, InvalidInput, NameUnknown, NotFound, Unavailable
from replica.peers import require_internal
from replica.registry import Registry

log = logging.getLogger("qreg.membership")

_ADDRESS = re.compile(r"[A-Za-z0-9.\-]+:\d{1,5}")
_REPLICA_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")


async def _until_committed(change: Callable[[], Awaitable[None]], seconds: float = 15.0) -> None:
    """Retry a membership change across leader elections (e.g. right after the leader died)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            await change()
            return
        except NoQuorum:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.3)


def _refuse_duplicates(registry: Registry, body: dict[str, object]) -> None:
    """A joiner's id and addresses must be new: a member's address given again would
    join nothing while the joiner believed itself a member."""
    replica_id = str(body.get("replica_id", ""))
    if not _REPLICA_ID.fullmatch(replica_id):
        raise InvalidInput("replica_id must be lowercase letters, digits, . _ -")
    raft_address = str(body.get("raft_address", ""))
    if not _ADDRESS.fullmatch(raft_address):
        raise InvalidInput("raft_address must be host:port")
    records = registry.state.replicas()
    if replica_id in {r.replica_id for r in records}:
        raise InvalidInput(
            f"a replica named {replica_id} is already in the cluster; "
            "remove it first or pick another id"
        )
    used = {
        "raft_address": ({r.raft_address for r in records} | set(registry.raft.members())),
        "http_url": {r.http_url.rstrip("/").lower() for r in records},
        "grpc_address": {r.grpc_address for r in records if r.grpc_address},
    }
    for field, taken in used.items():
        value = str(body.get(field, "")).rstrip("/")
        value = value.lower() if field == "http_url" else value
        if value and value in taken:
            owner = next(
                (
                    r.replica_id
                    for r in records
                    if value in (r.raft_address, r.http_url.rstrip("/").lower(), r.grpc_address)
                ),
                "a member",
            )
            raise InvalidInput(
                f"{field} {value} is already used by {owner}; give this replica its own address"
            )


async def _reachable(address: str, timeout: float = 3.0) -> bool:
    host, _, port = address.rpartition(":")
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), timeout)
    except (TimeoutError, OSError):
        return False
    writer.close()
    return True


def _internal(request: Request) -> Registry:
    require_internal(request)
    return context(request).registry


async def join(request: Request) -> Response:
    body = await read_body(request)
    registry: Registry = context(request).registry
    await registry.fresh()  # a revocation made through another replica counts here
    try:
        join_tokens.check(
            context(request).secret or "",
            str(body.get("token", ""))[:500],
            int(time.time() * 1000),
            registry.state.view(accounts.join_tokens_valid_after),
        )
    except join_tokens.InvalidJoinToken as e:
        log.warning(
            "join refused: %s",
            e,
            extra={"fields": {"event": "join_refused", "address": client_address(request)}},
        )
        raise Denied(str(e)) from None
    _refuse_duplicates(registry, body)
    # The joiner issues its own certificate from the cluster CA, and can issue the
    # next joiner's: every replica keeps the CA key.
    with open(context(request).ca_path) as ca, open(context(request).ca_key_path) as ca_key:
        authority = {"ca": ca.read(), "ca_key": ca_key.read()}
    return JSONResponse(
        {"secret": context(request).secret, "members": registry.raft.members(), **authority}
    )


async def issue_join_token(request: Request) -> Response:
    """A join token (an hour) and the command that uses it: what `qreg join-token`
    prints, for administrators in the UI. It buys the cluster secret: admins only."""
    refuse_cross_site(request)
    await require_operator(request, "add replicas")
    ctx = context(request)
    if not ctx.secret:
        raise NotFound("this replica has no cluster secret to sign join tokens with")
    try:
        with open(ctx.ca_path, "rb") as f:
            pin = pki.fingerprint(f.read())
    except OSError:
        pin = ""
    ttl = join_tokens.DEFAULT_TTL_S
    token = join_tokens.issue(ctx.secret, int(time.time() * 1000), ttl, pin)
    existing = ctx.public_url or str(request.base_url).rstrip("/")
    command = (
        f"qreg join --existing {existing} --token {token} --replica-id REPLICA_ID "
        "--data ./data --host THIS_HOST"
    )
    return JSONResponse({"token": token, "expires_in_s": ttl, "command": command})


async def revoke_join_tokens(request: Request) -> Response:
    """Every join token issued until now stops working, on every replica."""
    registry = _internal(request)
    now = int(time.time() * 1000)
    await registry.propose(
        pb.Command(
            revoke_join_tokens=pb.RevokeJoinTokens(before_ms=now), at_ms=now, actor="cluster"
        )
    )
    return JSONResponse({"revoked_before_ms": now})


async def snapshot(request: Request) -> Response:
    """A fresh Raft snapshot for a joining replica to start from."""
    registry = _internal(request)
    path = await registry.raft.fresh_snapshot()
    if path is None:
        return Response(status_code=204)
    f = open(path, "rb")  # opened now: a newer snapshot renamed over it does not disturb us

    def chunks() -> Iterator[bytes]:
        with f:
            while chunk := f.read(1 << 20):
                yield chunk

    return StreamingResponse(chunks(), media_type="application/octet-stream")


async def raft_snapshot(request: Request) -> Response:
    """This replica's current Raft snapshot, if it is the one asked for (by sha256):
    how a peer that needs it receives it (consensus/snapshot_transfer.py)."""
    registry = _internal(request)
    current = registry.raft.snapshots.current
    if current is None or current.sha256 != request.query_params.get("sha256"):
        raise NotFound("this replica no longer has that snapshot")
    f = open(registry.raft.snapshot_path, "rb")

    def chunks() -> Iterator[bytes]:
        with f:
            while chunk := f.read(1 << 20):
                yield chunk

    return StreamingResponse(
        chunks(),
        media_type="application/octet-stream",
        headers={"Content-Length": str(current.length)},
    )


async def add_member(request: Request) -> Response:
    try:
        registry = _internal(request)
        address = str((await read_body(request)).get("raft_address", ""))
        if not _ADDRESS.fullmatch(address):
            raise InvalidInput("raft_address must be host:port")
        # Once added, the new member counts toward every majority: with two members,
        # one that cannot answer stops all writes. Add only what answers.
        if address not in registry.raft.members() and not await _reachable(address):
            raise Unavailable(
                f"cannot reach the new member's Raft port {address}: is it "
                "running, and is the port open from here?"
            )

        async def add() -> None:
            if address not in registry.raft.members():
                await registry.raft.add_member(address)

        await _until_committed(add)
    except NoQuorum as e:
        raise Unavailable(f"the cluster could not add the member: {e}") from None
    return JSONResponse({"members": registry.raft.members()})


async def remove_replica(request: Request) -> Response:
    try:
        registry = _internal(request)
        replica_id = request.path_params["replica_id"]
        await registry.fresh()
        record = next((r for r in registry.state.replicas() if r.replica_id == replica_id), None)
        if record is None:
            raise NameUnknown(f"no replica named {replica_id}")

        async def remove() -> None:
            if record.raft_address in registry.raft.members():
                await registry.raft.remove_member(record.raft_address)

        await _until_committed(remove)
        await registry.propose(
            pb.Command(
                unregister_replica=pb.UnregisterReplica(replica_id=replica_id, forget_copies=True)
            )
        )
    except NoQuorum as e:
        raise Unavailable(f"the cluster could not remove the member: {e}") from None
    return JSONResponse({"removed": replica_id, "members": registry.raft.members()})
