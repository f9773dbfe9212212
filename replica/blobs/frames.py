"""Blob bytes in gRPC messages without protobuf's copies.

A PushChunk or Chunk that holds only bytes is, in protobuf's encoding, one tag byte,
the length as a varint, then the bytes. Building it with protobuf copies the bytes
into the message and again into its encoding; parsing copies them into the message
and again out of it: four copies of every replicated byte, on top of gRPC's and
the kernel's. Here a data message is framed with one copy and read as a view of
the received buffer. Any other message (one carrying a digest) goes through
protobuf. The bytes on the wire are what protobuf would have written, so replicas
of older and newer versions read each other's streams.
"""

from __future__ import annotations

from proto import blobs_pb2 as pb

# The tag byte of a length-delimited field: field number << 3 | wire type 2.
_PUSH_DATA = bytes([3 << 3 | 2])  # PushChunk.data
_CHUNK_DATA = bytes([1 << 3 | 2])  # Chunk.data


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _data_view(raw: bytes, tag: bytes) -> memoryview | None:
    """The bytes of a message made of the one field `tag` alone, as a view; else None."""
    if raw[:1] != tag:
        return None
    length, shift, offset = 0, 0, 1
    while offset < len(raw) and offset <= 10:
        byte = raw[offset]
        offset += 1
        length |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return memoryview(raw)[offset:] if offset + length == len(raw) else None
    return None


def push_data(data: bytes | memoryview) -> bytes:
    """A serialized PushChunk holding `data` only."""
    return b"".join((_PUSH_DATA, _varint(len(data)), data))


def push_end(digest: str, size: int) -> bytes:
    """A serialized PushChunk naming the blob (first or last message of a Push)."""
    return pb.PushChunk(digest=digest, size=size).SerializeToString()


def read_push(raw: bytes) -> tuple[memoryview | bytes, str, int]:
    """(data, digest, size) of a serialized PushChunk; digest "" and size 0 when unset."""
    view = _data_view(raw, _PUSH_DATA)
    if view is not None:
        return view, "", 0
    chunk = pb.PushChunk.FromString(raw)
    return chunk.data, chunk.digest, chunk.size


def chunk_data(data: bytes) -> bytes:
    """A serialized Chunk (a Fetch answer) holding `data`."""
    return b"".join((_CHUNK_DATA, _varint(len(data)), data))


def read_chunk(raw: bytes) -> memoryview | bytes:
    """The data of a serialized Chunk."""
    view = _data_view(raw, _CHUNK_DATA)
    return view if view is not None else pb.Chunk.FromString(raw).data
