"""A joining replica asks the cluster to add it as a voting member once it runs.

`qreg join` prepares the data directory and leaves a request (JOIN_REQUEST) naming
the replica it joined through; the running replica then asks that replica to add
its Raft address. Added before it runs, a member that cannot answer counts toward
the majority: growing a one-replica cluster to two stopped every write until the
new one was up (11-17 s). Asked by the running replica, the window without a
quorum is the time the new member takes to catch up from its snapshot.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os

import httpx

from replica.internal_auth import INTERNAL_HEADER, internal_token

log = logging.getLogger("qreg.join")

JOIN_REQUEST = "join-request.json"
_RETRY_S = (1.0, 2.0, 5.0, 10.0)


def write_request(data_dir: str, existing: str) -> None:
    with open(os.path.join(data_dir, JOIN_REQUEST), "w") as f:
        json.dump({"existing": existing}, f)


def pending(data_dir: str) -> str | None:
    """The URL of the replica to ask, if this replica has not been added yet."""
    try:
        with open(os.path.join(data_dir, JOIN_REQUEST)) as f:
            return str(json.load(f)["existing"])
    except (OSError, ValueError, KeyError):
        return None


async def become_member(
    data_dir: str, existing: str, raft_address: str, secret: str, ca_path: str | None
) -> bool:
    """Ask `existing` to add `raft_address` until it has (True) or refuses for good."""
    verify: str | bool = ca_path if ca_path and existing.startswith("https://") else True
    headers = {INTERNAL_HEADER: internal_token(secret) or ""}
    attempt = 0
    async with httpx.AsyncClient(verify=verify, timeout=30) as client:
        while True:
            try:
                r = await client.post(
                    f"{existing}/api/v0/members",
                    headers=headers,
                    json={"raft_address": raft_address},
                )
                if r.status_code == 200:
                    os.remove(os.path.join(data_dir, JOIN_REQUEST))
                    log.info(
                        "joined: a voting member now; members %s", ", ".join(r.json()["members"])
                    )
                    return True
                if 400 <= r.status_code < 500:
                    log.error(
                        "the cluster refused to add this replica: %s; fix it, then "
                        "restart (the request stays in %s)",
                        r.text[:300],
                        JOIN_REQUEST,
                    )
                    return False
                problem = f"{existing} answered {r.status_code}: {r.text[:200]}"
            except httpx.HTTPError as e:
                problem = f"cannot reach {existing}: {e}"
            delay = _RETRY_S[min(attempt, len(_RETRY_S) - 1)]
            attempt += 1
            log.warning("not a member yet (%s); asking again in %.0f s", problem, delay)
            await asyncio.sleep(delay)
