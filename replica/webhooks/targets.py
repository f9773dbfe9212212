"""Where a webhook may send: http(s) only, and never to loopback, link-local, private
or otherwise special addresses unless an administrator allowed it for that webhook, so
a webhook cannot be made to reach the cluster's own endpoints or its network.

The name is resolved once per delivery, every address it resolves to is checked, and
the request goes to the checked address (the name kept for Host, SNI and the
certificate check), so DNS cannot answer differently between the check and the
connection. Redirects are not followed.
"""

from __future__ import annotations

import ipaddress
import socket
import urllib.parse
from dataclasses import dataclass


class TargetRefused(ValueError):
    """A webhook URL the registry will not send to, and why."""


@dataclass(frozen=True)
class Target:
    url: str  # with the checked address in place of the name
    host: str  # the name: Host header, SNI and the certificate's name
    port: int


def _special(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return _special(address.ipv4_mapped)
    return (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    )


def check_url(url: str) -> urllib.parse.SplitResult:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise TargetRefused("a webhook's URL is http:// or https://")
    if not parts.hostname:
        raise TargetRefused("a webhook's URL needs a host")
    if parts.username or parts.password:
        raise TargetRefused("no credentials in a webhook's URL: use its secret")
    if len(url) > 2048:
        raise TargetRefused("the URL is over 2048 characters")
    return parts


def resolve(url: str, allow_private: bool) -> Target:
    """The address to send to; TargetRefused if none may be used. Blocks (DNS)."""
    parts = check_url(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise TargetRefused(f"{host} does not resolve: {e.strerror}") from None
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in found]
    special = [a for a in addresses if _special(a)]
    if special and not allow_private:
        raise TargetRefused(
            f"{host} is {special[0]}, a loopback, private or otherwise internal address: "
            "an administrator must allow internal targets for this webhook"
        )
    address = addresses[0]
    literal = f"[{address}]" if address.version == 6 else str(address)
    path = parts.path or "/"
    query = f"?{parts.query}" if parts.query else ""
    return Target(f"{parts.scheme}://{literal}:{port}{path}{query}", host, port)
