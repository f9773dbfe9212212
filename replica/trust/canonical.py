"""Canonical JSON as Notary signs it (docker/go's canonical encoder): keys sorted by
their bytes, no whitespace, only `"` and `\\` escaped in strings, numbers as integers.
A signature covers these bytes of the document's "signed" object, re-encoded from the
parsed value, so how a client spaced or ordered its upload does not matter."""

from __future__ import annotations

from typing import Any


class NotCanonical(ValueError):
    """A value canonical JSON cannot express (a fraction, a non-string key)."""


def encode(value: Any) -> bytes:
    out: list[str] = []
    _encode(value, out)
    return "".join(out).encode()


def _encode(value: Any, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, float):
        if not value.is_integer():
            raise NotCanonical(f"{value} is not a whole number")
        out.append(str(int(value)))
    elif isinstance(value, str):
        out.append('"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"')
    elif isinstance(value, list):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _encode(item, out)
        out.append("]")
    elif isinstance(value, dict):
        out.append("{")
        for i, k in enumerate(sorted(value, key=_utf8)):
            if i:
                out.append(",")
            _encode(k, out)
            out.append(":")
            _encode(value[k], out)
        out.append("}")
    else:
        raise NotCanonical(f"{type(value).__name__} has no canonical JSON form")


def _utf8(k: Any) -> bytes:
    if not isinstance(k, str):
        raise NotCanonical("object keys are strings")
    return k.encode()
