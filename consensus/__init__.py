"""The replicated metadata store: a deterministic state machine over LMDB, replicated with Raft.

Its names load on first use (PEP 562): `qreg --help` and the CLI's offline commands
need `consensus.accounts`' rules, not pysyncobj and LMDB.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from consensus.proposals import NoQuorum
    from consensus.raft import RaftNode
    from consensus.state import Manifest, MetadataState

__all__ = ["Manifest", "MetadataState", "NoQuorum", "RaftNode"]

_HOMES = {
    "NoQuorum": "consensus.proposals",
    "RaftNode": "consensus.raft",
    "Manifest": "consensus.state",
    "MetadataState": "consensus.state",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'consensus' has no attribute {name!r}")
