"""A renewed certificate (`qreg tls renew`) taken up without a restart: the HTTPS
listener loads it into its live TLS context (and the trusted client CAs, as they
change: client_certs.py), the gRPC blob service hands it to new
handshakes, and the blob client makes new channels with it. Connections already open
keep the certificate they were made with."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import ssl
import threading
import time
from collections.abc import Callable

import grpc
import uvicorn

from replica.client_certs import follow_client_cas
from replica.pki import TlsFiles

log = logging.getLogger("qreg.tls")

CHECK_S = 5.0


class FileStamp:
    """Whether any of some files changed since the last look (at most one look per
    `every` seconds: callers may ask on every handshake)."""

    def __init__(self, paths: list[str], every: float = CHECK_S) -> None:
        self.paths = paths
        self.every = every
        self._seen = self._stamp()
        self._looked = time.monotonic()
        self._lock = threading.Lock()

    def _stamp(self) -> tuple[tuple[int, int], ...]:
        stamps = []
        for path in self.paths:
            try:
                st = os.stat(path)
                stamps.append((st.st_mtime_ns, st.st_size))
            except OSError:
                stamps.append((0, 0))
        return tuple(stamps)

    def changed(self) -> bool:
        with self._lock:
            if time.monotonic() - self._looked < self.every:
                return False
            self._looked = time.monotonic()
            now = self._stamp()
            if now == self._seen:
                return False
            self._seen = now
            return True


class ReloadingServer(uvicorn.Server):
    """uvicorn, with its TLS context's certificate reloaded when the files change."""

    def __init__(
        self,
        config: uvicorn.Config,
        cert: str | None,
        key: str | None,
        client_cas: Callable[[], list[str] | None] | None = None,
    ) -> None:
        super().__init__(config)
        self._files = (cert, key)
        self._client_cas = client_cas
        self._watching: list[asyncio.Task[None]] = []

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        cert, key = self._files
        if self.config.ssl is not None and cert and key:
            self._watching.append(asyncio.create_task(self._watch(cert, key)))
        if self.config.ssl is not None and self._client_cas is not None:
            following = follow_client_cas(self.config.ssl, self._client_cas)
            self._watching.append(asyncio.create_task(following))

    async def _watch(self, cert: str, key: str) -> None:
        stamp = FileStamp([cert, key])
        while not self.should_exit:
            await asyncio.sleep(CHECK_S)
            if not stamp.changed():
                continue
            context = self.config.ssl
            if context is None:
                return
            try:
                # On the event loop, between handshakes: OpenSSL contexts are not
                # changed from other threads while in use.
                context.load_cert_chain(cert, key)
                log.info("HTTPS certificate reloaded from %s", cert)
            except (OSError, ssl.SSLError) as e:
                log.warning("HTTPS certificate not reloaded (kept the old one): %s", e)


def reloading_server_credentials(tls: TlsFiles) -> grpc.ServerCredentials:
    """Mutual-TLS server credentials for the blob service that pick up a renewed
    certificate (or CA) at the next handshake."""

    def configuration() -> grpc.ServerCertificateConfiguration:
        return grpc.ssl_server_certificate_configuration(
            [(_read(tls.key), _read(tls.cert))], root_certificates=_read(tls.ca)
        )

    stamp = FileStamp([tls.cert, tls.key, tls.ca])

    def fetch() -> grpc.ServerCertificateConfiguration | None:
        if not stamp.changed():
            return None
        try:
            log.info("blob service certificate reloaded from %s", tls.cert)
            return configuration()
        except OSError as e:
            log.warning("blob service certificate not reloaded: %s", e)
            return None

    return grpc.dynamic_ssl_server_credentials(
        configuration(), fetch, require_client_authentication=True
    )


def channel_credentials_source(tls: TlsFiles) -> Callable[[], grpc.ChannelCredentials | None]:
    """New client credentials when the certificate files changed since the last call
    (None otherwise): the blob client then makes new channels."""
    stamp = FileStamp([tls.cert, tls.key, tls.ca])

    def renewed() -> grpc.ChannelCredentials | None:
        if not stamp.changed():
            return None
        log.info("blob client certificate reloaded from %s", tls.cert)
        return channel_credentials(tls)

    return renewed


def channel_credentials(tls: TlsFiles) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(
        root_certificates=_read(tls.ca),
        private_key=_read(tls.key),
        certificate_chain=_read(tls.cert),
    )


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()
