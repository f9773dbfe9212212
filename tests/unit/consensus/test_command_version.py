"""A command of a newer envelope version, or of a kind this version does not know, is
refused, not guessed at: nothing of it is applied and the applied index stays."""

from __future__ import annotations

import pytest

from consensus import MetadataState
from consensus.state import COMMAND_VERSION, UnknownCommand
from proto import commands_pb2 as pb


def link(version: int) -> bytes:
    return pb.Command(
        version=version, link_blob=pb.LinkBlob(repository="a/b", digest="sha256:" + "0" * 64)
    ).SerializeToString()


def test_a_newer_command_stops_the_state_where_it_is(tmp_path) -> None:
    state = MetadataState(str(tmp_path / "s"))
    state.apply(1, link(COMMAND_VERSION))
    assert state.highest_command_version() == COMMAND_VERSION
    with pytest.raises(UnknownCommand, match="upgrade it"):
        state.apply(2, link(COMMAND_VERSION + 1))
    assert state.applied_index() == 1
    # A field number no version of ours has used: a kind from the future.
    future_kind = pb.Command(version=COMMAND_VERSION).SerializeToString() + b"\xfa\x3e\x00"
    with pytest.raises(UnknownCommand, match="kind this version does not know"):
        state.apply(2, future_kind)
    assert state.applied_index() == 1
    assert state.highest_command_version() == COMMAND_VERSION
