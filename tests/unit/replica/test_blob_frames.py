"""Blob bytes framed for gRPC by hand read the same as protobuf's own encoding."""

from __future__ import annotations

import os

import pytest
from google.protobuf.message import DecodeError

from proto import blobs_pb2 as pb
from replica.blobs import frames


@pytest.mark.parametrize("size", [0, 1, 127, 128, 16383, 16384, (4 << 20) + 3])
def test_data_frames_are_protobufs_encoding(size: int) -> None:
    data = os.urandom(size)
    framed = frames.push_data(data)
    assert pb.PushChunk.FromString(framed).data == data  # an older peer reads it
    if size:  # protobuf leaves an empty field out; both read back the same
        assert framed == pb.PushChunk(data=data).SerializeToString()
        assert frames.chunk_data(data) == pb.Chunk(data=data).SerializeToString()
    view, digest, length = frames.read_push(pb.PushChunk(data=data).SerializeToString())
    assert bytes(view) == data and (digest, length) == ("", 0)
    assert bytes(frames.read_chunk(pb.Chunk(data=data).SerializeToString())) == data


def test_messages_naming_a_blob_go_through_protobuf() -> None:
    digest = "sha256:" + "ab" * 32
    assert frames.read_push(frames.push_end(digest, 7)) == (b"", digest, 7)
    both = pb.PushChunk(digest=digest, size=3, data=b"abc").SerializeToString()  # older peers
    assert frames.read_push(both) == (b"abc", digest, 3)


def test_a_truncated_or_padded_frame_is_not_taken_for_data() -> None:
    framed = frames.push_data(b"x" * 300)
    for bad in (framed[:-1], framed + b"\x00"):
        with pytest.raises(DecodeError):  # protobuf refuses what the fast path leaves it
            frames.read_push(bad)
