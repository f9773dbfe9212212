"""One write per response: the head waits for the body's first bytes, or for the end
of the loop's turn; a 100 Continue is never held (the client waits for it)."""

from __future__ import annotations

import asyncio

from replica.http_protocol import _OneWriteTransport


class Recorder:
    """Stands in for the socket's transport: records each write."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return False


HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n"


def test_a_head_and_its_body_leave_in_one_write() -> None:
    async def go() -> list[bytes]:
        recorder = Recorder()
        transport = _OneWriteTransport(recorder, asyncio.get_running_loop())  # type: ignore[arg-type]
        transport.write(HEAD)
        transport.write(b"hello")
        await asyncio.sleep(0)
        assert not transport.is_closing()  # everything else goes to the transport
        return recorder.writes

    assert asyncio.run(go()) == [HEAD + b"hello"]


def test_a_head_alone_leaves_at_the_end_of_the_turn() -> None:
    async def go() -> tuple[list[bytes], list[bytes]]:
        recorder = Recorder()
        transport = _OneWriteTransport(recorder, asyncio.get_running_loop())  # type: ignore[arg-type]
        transport.write(HEAD)  # a HEAD answer: no body follows
        before = list(recorder.writes)
        await asyncio.sleep(0)
        return before, recorder.writes

    before, after = asyncio.run(go())
    assert before == [] and after == [HEAD]


def test_a_100_continue_is_written_at_once() -> None:
    async def go() -> list[bytes]:
        recorder = Recorder()
        transport = _OneWriteTransport(recorder, asyncio.get_running_loop())  # type: ignore[arg-type]
        transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        return list(recorder.writes)

    assert asyncio.run(go()) == [b"HTTP/1.1 100 Continue\r\n\r\n"]
