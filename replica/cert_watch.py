"""Warn before the replica's certificate or the cluster CA expires: a log line every
day from 30 days before (the metric qreg_tls_cert_expiry_timestamp_seconds feeds the
QregCertificateExpiring alert)."""

from __future__ import annotations

import asyncio
import logging
import time

from replica import pki

log = logging.getLogger("qreg.tls")

WARN_DAYS = 30


def expiring(certificates: dict[str, str], now: float) -> list[tuple[str, float]]:
    """(name, days left) of the certificates that expire within WARN_DAYS."""
    found = []
    for name, path in sorted(certificates.items()):
        try:
            with open(path, "rb") as f:
                left = (pki.expires_at(f.read()) - now) / 86400
        except (OSError, ValueError):
            continue
        if left < WARN_DAYS:
            found.append((name, left))
    return found


async def watch(certificates: dict[str, str], every_s: float = 86400.0) -> None:
    while True:
        for name, left in expiring(certificates, time.time()):
            log.warning(
                "the %s certificate expires in %.0f days: renew it (qreg tls issue)",
                name,
                left,
                extra={
                    "fields": {
                        "event": "certificate_expiring",
                        "cert": name,
                        "days": round(left, 1),
                    }
                },
            )
        await asyncio.sleep(every_s)
