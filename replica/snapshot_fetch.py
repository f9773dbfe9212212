"""Fetching a Raft snapshot a leader described (consensus/snapshot_transfer.py).

Runs in the snapshot worker thread: a blocking HTTPS download from the leader's
`/_internal/raft-snapshot`, with the cluster's internal credentials and CA, never
more bytes than the descriptor announced. The caller checks length and digest.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx

from consensus import MetadataState
from consensus.snapshot_transfer import Descriptor
from replica.internal_auth import INTERNAL_HEADER, internal_token
from replica.peers import trusting


def make_fetcher(
    state: MetadataState, secret: str | None, ca_path: str | None
) -> Callable[[Descriptor, str], None]:
    headers = {INTERNAL_HEADER: internal_token(secret) or ""}
    verify = trusting(ca_path)

    def fetch(wanted: Descriptor, path: str) -> None:
        url = next((r.http_url for r in state.replicas() if r.raft_address == wanted.source), None)
        if url is None:
            raise ValueError(f"no replica is registered at Raft address {wanted.source}")
        received = 0
        with (
            httpx.stream(
                "GET",
                f"{url}/_internal/raft-snapshot",
                params={"sha256": wanted.sha256},
                headers=headers,
                verify=verify,
                timeout=httpx.Timeout(30.0, connect=5.0),
            ) as r,
            open(path, "wb") as out,
        ):
            if r.status_code != 200:
                raise ValueError(
                    f"{url} answered {r.status_code} (a newer snapshot replaced that one?)"
                )
            for chunk in r.iter_bytes(1 << 20):
                received += len(chunk)
                if received > wanted.length:
                    raise ValueError(f"{url} sent more than the {wanted.length} bytes described")
                out.write(chunk)
            out.flush()

    return fetch
