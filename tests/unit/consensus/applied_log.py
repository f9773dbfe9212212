"""Commands applied to a state in order, as Raft hands them to every replica: what the
state machine's tests drive it with."""

from __future__ import annotations

import hashlib

from consensus import MetadataState
from proto import commands_pb2 as pb


def D(s: str) -> str:
    """A digest named after `s`."""
    return "sha256:" + hashlib.sha256(s.encode()).hexdigest()


class AppliedLog:
    def __init__(self, path: str, at_ms: int = 0) -> None:
        self.state = MetadataState(path)
        self.index = 0
        self.at_ms = at_ms  # each command's time

    def apply(self, actor: str = "", **kind: object) -> pb.Result:
        self.index += 1
        command = pb.Command(actor=actor, at_ms=self.at_ms, **kind)  # type: ignore[arg-type]
        return pb.Result.FromString(self.state.apply(self.index, command.SerializeToString()))
