"""A layer's inventory: read its tar once, keep only package databases and the OS
release, and the whiteouts that hide lower layers' files. An image's packages are its
layers' inventories stacked, lowest first: a file in a higher layer replaces the same
path below, a whiteout (.wh.NAME) removes NAME, an opaque marker (.wh..wh..opq) hides
its whole directory below.

Only small files are read (package databases, metadata): a layer of any size costs one
pass of decompression, and memory bounded by MAX_FILE per kept file.
"""

from __future__ import annotations

import posixpath
import re
import tarfile
from collections.abc import Callable
from typing import IO, Any

from replica.scan import packages

MAX_FILE = 64 << 20  # a dpkg status of a big image is a few MB
_WHITEOUT = ".wh."
_OPAQUE = ".wh..wh..opq"

# path pattern -> parser; paths are relative, without a leading "./" or "/".
_KINDS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"var/lib/dpkg/status"), "dpkg"),
    (re.compile(r"var/lib/dpkg/status\.d/[^/]+"), "dpkg"),
    (re.compile(r"lib/apk/db/installed"), "apk"),
    (re.compile(r".*/[^/]+\.dist-info/METADATA"), "python"),
    (re.compile(r".*/[^/]+\.egg-info/PKG-INFO"), "python"),
    (re.compile(r".*/[^/]+\.egg-info"), "python"),
    (re.compile(r"(?:.*/)?node_modules/(?:@[^/]+/)?[^/]+/package\.json"), "npm"),
    (re.compile(r"(?:etc|usr/lib)/os-release"), "os"),
]
_PARSERS: dict[str, Callable[[str], Any]] = {
    "dpkg": packages.dpkg_status,
    "apk": packages.apk_installed,
    "python": packages.python_metadata,
    "npm": packages.npm_package,
    "os": packages.os_release,
}


def _clean(name: str) -> str:
    while name.startswith("./"):
        name = name[2:]
    name = name.lstrip("/")
    return posixpath.normpath(name) if name else ""


def _kind(path: str) -> str | None:
    return next((kind for pattern, kind in _KINDS if pattern.fullmatch(path)), None)


def inventory(stream: IO[bytes]) -> dict[str, Any]:
    """{"files": {path: parsed}, "whiteouts": [paths], "opaque": [dirs]} of a layer
    (a tar, gzipped or not)."""
    files: dict[str, Any] = {}
    whiteouts: list[str] = []
    opaque: list[str] = []
    with tarfile.open(fileobj=stream, mode="r|*") as tar:
        for member in tar:
            path = _clean(member.name)
            base = posixpath.basename(path)
            if base == _OPAQUE:
                opaque.append(posixpath.dirname(path))
                continue
            if base.startswith(_WHITEOUT):
                whiteouts.append(posixpath.join(posixpath.dirname(path), base[len(_WHITEOUT) :]))
                continue
            kind = _kind(path)
            if kind is None or not member.isfile() or member.size > MAX_FILE:
                continue
            handle = tar.extractfile(member)
            if handle is None:
                continue
            text = handle.read().decode("utf-8", "replace")
            parsed = _PARSERS[kind](text)
            files[path] = {"kind": kind, "parsed": _plain(parsed)}
    return {"files": files, "whiteouts": sorted(whiteouts), "opaque": sorted(opaque)}


def _plain(parsed: Any) -> Any:
    if isinstance(parsed, list):
        return [p.as_dict() for p in parsed]
    return parsed


def _hidden(path: str, removed: set[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in removed)


def stack(layers: list[dict[str, Any]]) -> tuple[list[packages.Package], dict[str, str]]:
    """The image's packages and OS release from its layers' inventories, lowest first."""
    present: dict[str, dict[str, Any]] = {}
    for layer in layers:
        removed = set(layer.get("whiteouts", []))
        for directory in layer.get("opaque", []):
            removed.add(directory)
        if removed:
            present = {p: f for p, f in present.items() if not _hidden(p, removed)}
        present.update(layer.get("files", {}))
    found: list[packages.Package] = []
    release: dict[str, str] = {}
    for path in sorted(present):
        entry = present[path]
        if entry["kind"] == "os":
            if path.startswith("etc/") or not release:
                release = dict(entry["parsed"])
            continue
        for p in entry["parsed"]:
            found.append(packages.Package(p["kind"], p["name"], p["version"], p.get("source", "")))
    return sorted(set(found), key=lambda p: (p.kind, p.name, p.version)), release
