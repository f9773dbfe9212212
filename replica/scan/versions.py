"""Version order per ecosystem, as its package manager orders them: Debian with
python-debian (dpkg's algorithm), PyPI with packaging (PEP 440), npm and Go with
semantic versioning, Alpine with apk's rules (written here: no maintained library
implements them)."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from debian.debian_support import Version as DebianVersion
from packaging.version import InvalidVersion
from packaging.version import Version as PythonVersion


@lru_cache(maxsize=65536)
def compare(ecosystem: str, a: str, b: str) -> int:
    """-1, 0 or 1 as a is older than, the same as or newer than b (memoised: an image's
    versions meet the same advisories' versions again and again)."""
    base = ecosystem.split(":", 1)[0]
    if base == "Debian" or base == "Ubuntu":
        return _sign(DebianVersion(a), DebianVersion(b))
    if base == "PyPI":
        try:
            return _sign(PythonVersion(a), PythonVersion(b))
        except InvalidVersion:
            return _sign(a, b)
    if base == "Alpine":
        return apk_compare(a, b)
    return semver_compare(a, b)


def _sign(a: Any, b: Any) -> int:
    return int(a > b) - int(a < b)


_SEMVER = re.compile(r"v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:-([0-9A-Za-z.-]+))?(?:\+.*)?")


def semver_compare(a: str, b: str) -> int:
    """Semantic versioning 2.0's precedence (build metadata ignored)."""
    ma, mb = _SEMVER.fullmatch(a.strip()), _SEMVER.fullmatch(b.strip())
    if not ma or not mb:
        return _sign(a, b)
    core_a = tuple(int(x or 0) for x in ma.groups()[:3])
    core_b = tuple(int(x or 0) for x in mb.groups()[:3])
    if core_a != core_b:
        return _sign(core_a, core_b)
    pre_a, pre_b = ma.group(4), mb.group(4)
    if pre_a == pre_b:
        return 0
    if pre_a is None or pre_b is None:
        return 1 if pre_a is None else -1  # a release is newer than its pre-releases
    for x, y in zip(pre_a.split("."), pre_b.split("."), strict=False):
        if x == y:
            continue
        if x.isdigit() and y.isdigit():
            return _sign(int(x), int(y))
        if x.isdigit() or y.isdigit():
            return -1 if x.isdigit() else 1  # numeric identifiers sort first
        return _sign(x, y)
    return _sign(len(pre_a.split(".")), len(pre_b.split(".")))


# apk: digits separated by dots, then an optional letter, then suffixes
# (_alpha < _beta < _pre < _rc < (none) < _cvs < _svn < _git < _hg < _p), then -rN.
_SUFFIXES = {
    "alpha": 0,
    "beta": 1,
    "pre": 2,
    "rc": 3,
    "": 4,
    "cvs": 5,
    "svn": 6,
    "git": 7,
    "hg": 8,
    "p": 9,
}
_APK = re.compile(
    r"(\d+(?:\.\d+)*)([a-z]?)((?:_(?:alpha|beta|pre|rc|cvs|svn|git|hg|p)\d*)*)(?:-r(\d+))?"
)


def _apk_key(version: str) -> tuple[object, ...] | None:
    m = _APK.fullmatch(version.strip())
    if not m:
        return None
    numbers, letter, suffixes, release = m.groups()
    parts = [int(x) for x in numbers.split(".")]
    suffix_key = [
        (_SUFFIXES[s.group(1)], int(s.group(2) or 0))
        for s in re.finditer(r"_([a-z]+)(\d*)", suffixes or "")
    ] or [(_SUFFIXES[""], 0)]
    return (parts, letter, suffix_key, int(release or 0))


def apk_compare(a: str, b: str) -> int:
    ka, kb = _apk_key(a), _apk_key(b)
    if ka is None or kb is None:
        return _sign(a, b)
    # Numbers compare part by part; a version with more parts is newer when the rest tie.
    pa, pb = ka[0], kb[0]
    assert isinstance(pa, list) and isinstance(pb, list)
    for x, y in zip(pa, pb, strict=False):
        if x != y:
            return _sign(x, y)
    if len(pa) != len(pb):
        return _sign(len(pa), len(pb))
    return _sign(ka[1:], kb[1:])
