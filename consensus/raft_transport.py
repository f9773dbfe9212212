"""The Raft port, guarded: what reaches it from the network costs the cluster next to nothing.

pysyncobj's TCP connection trusts the length a frame declares, buffers with
repeated `bytes +=` copies and reads until the socket is empty: a stranger who
declares a 2 GB frame and streams zeros keeps the Raft thread copying, and the
leader loses its majority within seconds. This module replaces its connection
and server classes (same interface, for pysyncobj's TCPTransport) with ones that:

- refuse a frame longer than MAX_FRAME (a few MiB over the largest message
  pysyncobj sends: appends and snapshot chunks are at most 64 KiB before
  compression and Fernet), and a first frame on an incoming connection longer
  than MAX_HELLO: a peer's first message is its 32-byte handshake key;
- read at most READ_BUDGET bytes per connection per poll round, so one busy
  socket never starves the heartbeats of the others (the poller is
  level-triggered: what is left is read in the next round);
- buffer in a bytearray, consumed from the front without copying the rest;
- give a stranger HELLO_DEADLINE_S to finish the cluster-secret handshake (every
  frame is Fernet-authenticated, HMAC-SHA256, before pysyncobj unpickles it) and
  keep at most MAX_STRANGERS such connections, dropping the oldest for a new one:
  peers finish the handshake in milliseconds, a flood of idle sockets cannot
  crowd them out;
- accept at most one connection per poll round (as pysyncobj does).

Frames stay pysyncobj's: 4-byte length, zlib, Fernet with the cluster secret.
"""

from __future__ import annotations

import errno
import functools
import socket
import struct
import time
import zlib
from collections.abc import Callable
from typing import Any

from pysyncobj import pickle
from pysyncobj.dns_resolver import globalDnsResolver
from pysyncobj.poller import POLL_EVENT_TYPE
from pysyncobj.tcp_connection import CONNECTION_STATE, _getAddrType, set_keepalive
from pysyncobj.transport import TCPTransport

MAX_FRAME = 8 << 20
MAX_HELLO = 4096
READ_BUDGET = 256 << 10
HELLO_DEADLINE_S = 2.0
MAX_STRANGERS = 16

_LENGTH = struct.Struct("i")  # pysyncobj's: native int, little-endian on every platform we run
_WOULD_BLOCK = (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINPROGRESS)


class GuardedConnection:
    """One TCP connection carrying pysyncobj's frames, with bounded reads and frames."""

    def __init__(
        self,
        poller: Any,
        onMessageReceived: Callable[..., Any] | None = None,
        onConnected: Callable[[], Any] | None = None,
        onDisconnected: Callable[[], Any] | None = None,
        socket: socket.socket | None = None,
        timeout: float = 10.0,
        sendBufferSize: int = 2**13,
        recvBufferSize: int = 2**13,
        keepalive: tuple[int, int, int] | None = None,
    ) -> None:
        self.sendRandKey: bytes | None = None
        self.recvRandKey: bytes | None = None
        self.recvLastTimestamp = 0
        self.encryptor: Any = None
        self.accepted_at = time.monotonic()
        self.frames_received = 0
        self._poller = poller
        self._timeout = timeout
        self._send_size = sendBufferSize
        self._recv_size = recvBufferSize
        self._keepalive = keepalive
        self._on_message = onMessageReceived
        self._on_connected = onConnected
        self._on_disconnected = onDisconnected
        self._read = bytearray()
        self._write = bytearray()
        self._last_read = time.monotonic()
        self._socket = socket
        self._fileno: int | None = None
        self._state = CONNECTION_STATE.DISCONNECTED
        if socket is not None:
            self._fileno = socket.fileno()
            self._state = CONNECTION_STATE.CONNECTED
            self._set_keepalive()
            self._poller.subscribe(
                self._fileno,
                self._on_event,
                POLL_EVENT_TYPE.READ | POLL_EVENT_TYPE.WRITE | POLL_EVENT_TYPE.ERROR,
            )

    # ---- pysyncobj's interface ------------------------------------------------------

    @property
    def state(self) -> int:
        return int(self._state)

    def setOnConnectedCallback(self, callback: Callable[[], Any]) -> None:
        self._on_connected = callback

    def setOnMessageReceivedCallback(self, callback: Callable[..., Any]) -> None:
        self._on_message = callback

    def setOnDisconnectedCallback(self, callback: Callable[[], Any]) -> None:
        self._on_disconnected = callback

    def fileno(self) -> int | None:
        return self._fileno

    def getSendBufferSize(self) -> int:
        return len(self._write)

    def connect(self, host: str, port: int) -> bool:
        if host is None:
            return False
        self._state = CONNECTION_STATE.DISCONNECTED
        self._fileno = None
        self._socket = socket.socket(_getAddrType(host), socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self._send_size)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self._recv_size)
        self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._set_keepalive()
        self._socket.setblocking(False)
        self._read = bytearray()
        self._write = bytearray()
        self._last_read = time.monotonic()
        try:
            self._socket.connect((host, port))
        except OSError as e:
            if e.errno not in _WOULD_BLOCK:
                return False
        self._fileno = self._socket.fileno()
        self._state = CONNECTION_STATE.CONNECTING
        self._poller.subscribe(
            self._fileno,
            self._on_event,
            POLL_EVENT_TYPE.READ | POLL_EVENT_TYPE.WRITE | POLL_EVENT_TYPE.ERROR,
        )
        return True

    def send(self, message: Any) -> None:
        if self.sendRandKey:
            message = (self.sendRandKey, message)
        data = zlib.compress(pickle.dumps(message), 3)
        if self.encryptor:
            data = self.encryptor.encrypt_at_time(data, int(time.monotonic()))
        self._write += _LENGTH.pack(len(data))
        self._write += data
        self._flush()

    def disconnect(self) -> None:
        notify = self._on_disconnected is not None and self._state != CONNECTION_STATE.DISCONNECTED
        self.sendRandKey = None
        self.recvRandKey = None
        self.recvLastTimestamp = 0
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        if self._fileno is not None:
            self._poller.unsubscribe(self._fileno)
            self._fileno = None
        self._write = bytearray()
        self._read = bytearray()
        self._state = CONNECTION_STATE.DISCONNECTED
        if notify and self._on_disconnected is not None:
            self._on_disconnected()

    # ---- the poll loop ------------------------------------------------------------------

    def _set_keepalive(self) -> None:
        if self._socket is not None and self._keepalive is not None:
            set_keepalive(self._socket, *self._keepalive)

    def _on_event(self, descr: int, event: int) -> None:
        if descr != self._fileno:
            self._poller.unsubscribe(descr)
            return
        if event & POLL_EVENT_TYPE.ERROR or self._timed_out():
            self.disconnect()
            return
        assert self._socket is not None
        if event & (POLL_EVENT_TYPE.READ | POLL_EVENT_TYPE.WRITE):
            if self._socket.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                self.disconnect()
                return
            if self._state == CONNECTION_STATE.CONNECTING:
                if self._on_connected is not None:
                    self._on_connected()
                if self._state == CONNECTION_STATE.DISCONNECTED:
                    return
                self._state = CONNECTION_STATE.CONNECTED
                self._last_read = time.monotonic()
                return
        if event & POLL_EVENT_TYPE.WRITE:
            self._flush()
            if self._state == CONNECTION_STATE.DISCONNECTED:
                return
            mask = POLL_EVENT_TYPE.READ | POLL_EVENT_TYPE.ERROR
            if self._write:
                mask |= POLL_EVENT_TYPE.WRITE
            self._poller.subscribe(descr, self._on_event, mask)
        if event & POLL_EVENT_TYPE.READ:
            self._receive()
            while self._state != CONNECTION_STATE.DISCONNECTED:
                message = self._next_message()
                if message is None:
                    break
                if self._on_message is not None:
                    self._on_message(message)

    def _timed_out(self) -> bool:
        return time.monotonic() - self._last_read > self._timeout

    def _flush(self) -> None:
        if self._timed_out():
            self.disconnect()
            return
        while self._write and self._socket is not None:
            try:
                sent = self._socket.send(self._write)
            except OSError as e:
                if e.errno not in _WOULD_BLOCK:
                    self.disconnect()
                return
            if sent <= 0:
                return
            del self._write[:sent]  # bytearray drops its head without copying the rest

    def _receive(self) -> None:
        budget = READ_BUDGET
        while budget > 0 and self._socket is not None:
            try:
                incoming = self._socket.recv(min(self._recv_size, budget))
            except OSError as e:
                if e.errno not in _WOULD_BLOCK:
                    self.disconnect()
                break
            if not incoming:
                self.disconnect()
                return
            self._read += incoming
            budget -= len(incoming)
            if not self._length_ok():
                self.disconnect()
                return
        self._last_read = time.monotonic()

    def _length_ok(self) -> bool:
        """Whether the frame being read may be as long as it says (checked on its header)."""
        if len(self._read) < _LENGTH.size:
            return True
        (length,) = _LENGTH.unpack_from(self._read)
        limit = MAX_FRAME if self.frames_received else MAX_HELLO
        return bool(0 < length <= limit)

    def _next_message(self) -> Any:
        if len(self._read) < _LENGTH.size:
            return None
        (length,) = _LENGTH.unpack_from(self._read)
        if len(self._read) - _LENGTH.size < length:
            return None
        data = bytes(self._read[_LENGTH.size : _LENGTH.size + length])
        del self._read[: _LENGTH.size + length]
        try:
            if self.encryptor:
                stamp = self.encryptor.extract_timestamp(data)
                if stamp < self.recvLastTimestamp:
                    raise ValueError("replayed frame")
                self.recvLastTimestamp = stamp
                data = self.encryptor.decrypt(data)  # verifies the HMAC before anything else
            message = pickle.loads(zlib.decompress(data))
            if self.recvRandKey:
                key, message = message
                if key != self.recvRandKey:
                    raise ValueError("frame of another connection")
        except Exception:  # anything unauthenticated or malformed: drop the stranger
            self.disconnect()
            return None
        self.frames_received += 1
        if not self._length_ok():
            self.disconnect()
            return None
        return message


class GuardedServer:
    """The listening socket, accepting one connection per poll round."""

    def __init__(
        self,
        poller: Any,
        host: str,
        port: int,
        on_new_connection: Callable[[GuardedConnection], None],
        send_buffer_size: int,
        recv_buffer_size: int,
        connection_timeout: float,
        keepalive: tuple[int, int, int] | None,
    ) -> None:
        self._poller = poller
        self._host = host
        self._port = int(port)
        self._on_new_connection = on_new_connection
        self._send_size = send_buffer_size
        self._recv_size = recv_buffer_size
        self._timeout = connection_timeout
        self._keepalive = keepalive
        self._socket: socket.socket | None = None
        self._fileno: int | None = None

    def bind(self) -> None:
        sock = socket.socket(_getAddrType(self._host), socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self._send_size)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self._recv_size)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setblocking(False)
        try:
            sock.bind((self._host, self._port))
            sock.listen(64)
        except OSError:
            sock.close()
            raise
        self._socket = sock
        self._fileno = sock.fileno()
        self._poller.subscribe(
            self._fileno, self._accept, POLL_EVENT_TYPE.READ | POLL_EVENT_TYPE.ERROR
        )

    def unbind(self) -> None:
        if self._fileno is not None:
            self._poller.unsubscribe(self._fileno)
            self._fileno = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def _accept(self, descr: int, event: int) -> None:
        if event & POLL_EVENT_TYPE.READ and self._socket is not None:
            try:
                sock, _ = self._socket.accept()
            except OSError as e:
                if e.errno not in _WOULD_BLOCK:
                    self.unbind()
                return
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self._send_size)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self._recv_size)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setblocking(False)
            self._on_new_connection(
                GuardedConnection(
                    self._poller,
                    socket=sock,
                    timeout=self._timeout,
                    sendBufferSize=self._send_size,
                    recvBufferSize=self._recv_size,
                    keepalive=self._keepalive,
                )
            )
        if event & POLL_EVENT_TYPE.ERROR:
            self.unbind()


class GuardedTransport(TCPTransport):  # type: ignore[misc]
    """pysyncobj's TCP transport over guarded connections, with strangers kept in check."""

    def _createServer(self) -> None:
        conf = self._syncObj.conf
        address = conf.bindAddress or self._selfNode.address
        host, port = address.rsplit(":", 1)
        if host not in ("0.0.0.0", "::"):
            # A host name (replica-0 in compose, a pod's name in Kubernetes) is bound at
            # the address it resolves to, as pysyncobj's own server does.
            host = globalDnsResolver().resolve(host) or host
        self._server = GuardedServer(
            self._syncObj._poller,
            host,
            int(port),
            self._onNewIncomingConnection,
            conf.sendBufferSize,
            conf.recvBufferSize,
            conf.connectionTimeout,
            conf.tcp_keepalive,
        )

    def addNode(self, node: Any) -> None:
        self._nodes.add(node)
        self._nodeAddrToNode[node.address] = node
        if self._shouldConnect(node):
            conf = self._syncObj.conf
            conn = GuardedConnection(
                self._syncObj._poller,
                timeout=conf.connectionTimeout,
                sendBufferSize=conf.sendBufferSize,
                recvBufferSize=conf.recvBufferSize,
                keepalive=conf.tcp_keepalive,
            )
            conn.encryptor = self._syncObj.encryptor
            conn.setOnConnectedCallback(functools.partial(self._onOutgoingConnected, conn))
            conn.setOnMessageReceivedCallback(functools.partial(self._onMessageReceived, node))
            conn.setOnDisconnectedCallback(functools.partial(self._onDisconnected, conn))
            self._connections[node] = conn

    def _onNewIncomingConnection(self, conn: GuardedConnection) -> None:
        if len(self._unknownConnections) >= MAX_STRANGERS:
            oldest = min(self._unknownConnections, key=lambda c: c.accepted_at)
            oldest.disconnect()
            self._unknownConnections.discard(oldest)
        super()._onNewIncomingConnection(conn)

    def _onTick(self) -> None:
        super()._onTick()
        now = time.monotonic()
        for conn in [c for c in self._unknownConnections if now - c.accepted_at > HELLO_DEADLINE_S]:
            conn.disconnect()
            self._unknownConnections.discard(conn)
