"""Readable terminal output: aligned tables and plain errors."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[("-" if v is None else str(v)) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=False)).rstrip()]
    for row in cells:
        lines.append("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=False)).rstrip())
    return "\n".join(lines)


def size(n: int | None) -> str:
    """Bytes for people: 512 B, 3.4 MiB, 1.2 TiB ("-" when unknown)."""
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def error_text(response: Any) -> str:
    """The OCI-style {"errors": [...]} of an httpx response, as one line."""
    try:
        return "; ".join(f"{e['code']}: {e['message']}" for e in response.json()["errors"])
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code}"


def fail(command: str, message: str, code: int = 1) -> int:
    print(f"qreg {command}: {message}", file=sys.stderr)
    return code
