"""A replica's view of its caches' health: one dropped connection is not an outage."""

import asyncio

from proto import commands_pb2 as pb
from replica.cache_redirect import CacheHealth, follows_redirects


async def _server(drops: int) -> tuple[asyncio.Server, list[int]]:
    """An HTTP server that closes its first DROPS connections without an answer (as a
    server closing an idle keep-alive connection does), then answers 200."""
    seen = [0]

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen[0] += 1
        await reader.readuntil(b"\r\n\r\n")
        if seen[0] > drops:
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")
            await writer.drain()
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0), seen


def _check(drops: int) -> tuple[dict, int]:
    async def run() -> tuple[dict, int]:
        server, seen = await _server(drops)
        port = server.sockets[0].getsockname()[1]
        health = CacheHealth(None, None)  # type: ignore[arg-type]
        try:
            await health._check(pb.PutCache(name="eu", url=f"http://127.0.0.1:{port}"))
        finally:
            await health.client.aclose()
            server.close()
            await server.wait_closed()
        return health.seen["eu"], seen[0]

    return asyncio.run(run())


def test_one_dropped_connection_is_retried_and_the_cache_stays_up() -> None:
    seen, connections = _check(drops=1)
    assert seen["up"] is True and connections == 2


def test_two_failures_in_a_row_mark_the_cache_down() -> None:
    seen, connections = _check(drops=2)
    assert seen["up"] is False and "RemoteProtocolError" in seen["error"]
    assert connections == 2


def test_only_clients_known_to_follow_redirects_are_redirected() -> None:
    clients = ("docker/", "containerd/", "skopeo/")
    assert follows_redirects("docker/27.3.1 go/go1.22.7 os/linux arch/amd64", clients)
    assert follows_redirects("containerd/v1.7.24", clients)
    assert not follows_redirects("curl/7.88.1", clients)
    assert not follows_redirects("", clients)
