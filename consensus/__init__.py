"""The replicated metadata store: a deterministic state machine over LMDB, replicated with Raft."""

from consensus import accounts, caches
from consensus.raft import NoQuorum, RaftNode
from consensus.state import Manifest, MetadataState

__all__ = ["Manifest", "MetadataState", "NoQuorum", "RaftNode", "accounts", "caches"]
