"""One webhook delivery: the JSON payload of an event, its signature, and the POST.

Headers of every delivery (documented in the README):

    X-Qreg-Event: push                   the event's type
    X-Qreg-Delivery: <webhook>:<event>   the same on every retry: receivers drop repeats
    X-Qreg-Signature-256: sha256=<hex>   HMAC-SHA256 of the body with the webhook's secret

Answers 2xx count as delivered. The answer is read only up to EXCERPT bytes; each
attempt has TIMEOUT_S in all, so a slow receiver holds a delivery slot no longer.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx

from consensus import events
from proto import commands_pb2 as pb
from replica.webhooks.targets import TargetRefused, resolve

TIMEOUT_S = 10.0
EXCERPT = 512
USER_AGENT = "QuorumRegistry-Webhook/1"


@dataclass(frozen=True)
class Outcome:
    ok: bool
    code: int
    excerpt: str
    millis: int


def payload(hook: pb.Webhook, event: pb.Event, registry_host: str) -> dict[str, Any]:
    """What a CI needs: what happened, to what, by whom, when, and how to pull it."""
    body = events.event_json(event)
    body["occurred_at"] = (
        datetime.datetime.fromtimestamp(event.at_ms / 1000, datetime.UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )
    if event.repository and event.type in ("push", "scan", "sign"):
        if event.tag:
            body["pull"] = f"{registry_host}/{event.repository}:{event.tag}"
        elif event.digest:
            body["pull"] = f"{registry_host}/{event.repository}@{event.digest}"
    body["webhook"] = hook.id
    body["registry"] = registry_host
    return body


def signature(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


class Clients:
    """One HTTP client per webhook and CA, its connections kept alive between
    deliveries (a TLS handshake per event would cap a webhook at a few dozen a second)."""

    def __init__(self) -> None:
        self._clients: dict[tuple[str, str], httpx.Client] = {}
        self._lock = threading.Lock()

    def get(self, hook: pb.Webhook) -> httpx.Client:
        key = (hook.id, hook.ca_pem)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                verify: ssl.SSLContext | bool = True
                if hook.ca_pem:
                    verify = ssl.create_default_context(cadata=hook.ca_pem)
                limits = httpx.Limits(max_connections=8, max_keepalive_connections=8)
                client = httpx.Client(verify=verify, timeout=TIMEOUT_S, limits=limits,
                                      follow_redirects=False)  # fmt: skip
                self._clients[key] = client
            return client

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()


def send(
    hook: pb.Webhook,
    secret: bytes,
    event_type: str,
    delivery_id: str,
    body: bytes,
    clients: Clients | None = None,
) -> Outcome:
    """POST one delivery (blocking: DNS, connect, TLS, the answer's head and excerpt)."""
    started = time.monotonic()
    try:
        target = resolve(hook.url, hook.allow_private)
    except TargetRefused as e:
        return Outcome(False, 0, f"refused: {e}", 0)
    own = clients is None
    client = (clients or Clients()).get(hook)
    headers = {
        "Host": target.host if target.port in (80, 443) else f"{target.host}:{target.port}",
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Qreg-Event": event_type,
        "X-Qreg-Delivery": delivery_id,
        "X-Qreg-Signature-256": signature(secret, body),
    }
    try:
        request = client.build_request(
            "POST", target.url, content=body, headers=headers,
            extensions={"sni_hostname": target.host},
        )  # fmt: skip
        response = client.send(request, stream=True)
        try:
            excerpt = b""
            for chunk in response.iter_bytes():
                excerpt += chunk
                if len(excerpt) >= EXCERPT or time.monotonic() - started > TIMEOUT_S:
                    break
        finally:
            response.close()
    except httpx.HTTPError as e:
        millis = int((time.monotonic() - started) * 1000)
        return Outcome(False, 0, f"{type(e).__name__}: {e}"[:EXCERPT], millis)
    finally:
        if own:
            client.close()
    millis = int((time.monotonic() - started) * 1000)
    text = excerpt[:EXCERPT].decode("utf-8", "replace")
    return Outcome(200 <= response.status_code < 300, response.status_code, text, millis)


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
