"""A TCP relay between network namespaces, with an optional one-way delay.

    python -m tests.netns_relay ROUTE...     ROUTE: LISTEN=CONNECT[@DELAY_MS]
    LISTEN, CONNECT: [NETNS/]HOST:PORT       no NETNS: the relay's own namespace

A socket belongs to the namespace its creator was in when it made it, so one process
can listen in one namespace and connect in another: the relay enters the namespace
(setns), makes the socket and comes back. The slow-link tests use it to join the
cluster (on the host's loopback) to namespaces they create, and to add latency, which
`tc netem` would do but this kernel lacks. Prints "ready" once every route listens.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import socket
import sys
from dataclasses import dataclass

CLONE_NEWNET = 0x40000000
CHUNK = 64 << 10
QUEUED_CHUNKS = 64  # per direction: what the delay line holds before reading stops

# The loop keeps only weak references to tasks: a connection whose sockets are paused
# (backpressure) would otherwise be garbage-collected mid-transfer.
_connections: set[asyncio.Task[None]] = set()
_libc = ctypes.CDLL(None, use_errno=True)
_home = os.open("/proc/self/ns/net", os.O_RDONLY)


@dataclass(frozen=True)
class Endpoint:
    netns: str
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Endpoint:
        netns, _, address = text.rpartition("/")
        host, _, port = address.rpartition(":")
        return cls(netns, host, int(port))

    def socket(self) -> socket.socket:
        """A TCP socket in this endpoint's namespace. Its proto is spelled out because
        asyncio disables Nagle only on sockets whose proto says TCP, and Nagle with
        delayed ACKs would stall every small write by 40 ms."""
        if not self.netns:
            return _tcp_socket()
        target = os.open(f"/var/run/netns/{self.netns}", os.O_RDONLY)
        try:
            if _libc.setns(target, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), f"setns {self.netns}")
            try:
                return _tcp_socket()
            finally:
                if _libc.setns(_home, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns back home")
        finally:
            os.close(target)


def _tcp_socket() -> socket.socket:
    return socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    """Copy one direction; with a delay, every chunk leaves `delay` s after it came."""
    loop = asyncio.get_running_loop()
    line: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(QUEUED_CHUNKS)

    async def send() -> None:
        while True:
            due, data = await line.get()
            if due > loop.time():
                await asyncio.sleep(due - loop.time())
            if not data:
                if writer.can_write_eof():
                    writer.write_eof()
                return
            writer.write(data)
            await writer.drain()

    sender = asyncio.create_task(send())
    try:
        while True:
            data = await reader.read(CHUNK)
            await line.put((loop.time() + delay, data))
            if not data:
                break
        await sender
    except (ConnectionError, OSError):
        sender.cancel()


async def _relay(
    client_reader: asyncio.StreamReader,
    client_writer: asyncio.StreamWriter,
    target: Endpoint,
    delay: float,
) -> None:
    sock = target.socket()
    sock.setblocking(False)
    try:
        await asyncio.get_running_loop().sock_connect(sock, (target.host, target.port))
        reader, writer = await asyncio.open_connection(sock=sock)
    except OSError:
        sock.close()
        client_writer.close()
        return
    try:
        await asyncio.gather(
            _pipe(client_reader, writer, delay), _pipe(reader, client_writer, delay)
        )
    finally:
        writer.close()
        client_writer.close()


async def main(routes: list[str]) -> None:
    servers = []
    for route in routes:
        listen_text, _, rest = route.partition("=")
        connect_text, _, delay_ms = rest.partition("@")
        listen, target = Endpoint.parse(listen_text), Endpoint.parse(connect_text)
        delay = float(delay_ms or 0) / 1000
        sock = listen.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((listen.host, listen.port))
        sock.listen(128)

        async def accept(
            r: asyncio.StreamReader,
            w: asyncio.StreamWriter,
            target: Endpoint = target,
            delay: float = delay,
        ) -> None:
            task = asyncio.current_task()
            assert task is not None
            _connections.add(task)
            try:
                await _relay(r, w, target, delay)
            finally:
                _connections.discard(task)

        servers.append(await asyncio.start_server(accept, sock=sock))
    print("ready", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    asyncio.run(main(sys.argv[1:]))
