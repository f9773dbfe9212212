"""Which OSV records affect an image's packages: each package is looked up under its
ecosystem (Debian and Alpine advisories name source packages, with the release in the
ecosystem), then its version is checked against the record's listed versions and its
ranges (introduced, fixed, last_affected, limit), in the ecosystem's version order."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from replica.scan import versions
from replica.scan.osv import SEVERITIES, OsvIndex
from replica.scan.packages import Package


@dataclass(frozen=True)
class Finding:
    package: str
    version: str
    fixed: str  # the lowest version that fixes it, "" if none is known
    vulnerability: str
    aliases: tuple[str, ...]
    severity: str
    ecosystem: str

    def as_dict(self) -> dict[str, Any]:
        found = asdict(self)
        found["aliases"] = list(self.aliases)
        return found


def ecosystem_of(package: Package, release: dict[str, str]) -> tuple[str, str] | None:
    """(OSV ecosystem, the name advisories use) of a package in an image of `release`."""
    if package.kind == "deb":
        name = package.source or package.name
        if release.get("ID") == "ubuntu":
            return f"Ubuntu:{release.get('VERSION_ID', '')}".rstrip(":"), name
        major = release.get("VERSION_ID", "").split(".", 1)[0]
        return (f"Debian:{major}" if major else "Debian"), name
    if package.kind == "apk":
        parts = release.get("VERSION_ID", "").split(".")
        branch = f"v{parts[0]}.{parts[1]}" if len(parts) >= 2 else ""
        return (f"Alpine:{branch}" if branch else "Alpine"), package.source or package.name
    if package.kind == "pypi":
        return "PyPI", package.name
    if package.kind == "npm":
        return "npm", package.name
    return None


def affects(ecosystem: str, version: str, affected: dict[str, Any]) -> tuple[bool, str]:
    """(whether `version` is affected, the fix version of the range that says so)."""
    if version in affected.get("versions", []):
        return True, ""
    for r in affected.get("ranges", []):
        introduced, fixed, last, limit = None, "", "", ""
        hit = False
        fix_for_hit = ""
        for event in r.get("events", []):
            if "introduced" in event:
                introduced = event["introduced"]
                fixed = last = limit = ""
            elif "fixed" in event:
                fixed = event["fixed"]
            elif "last_affected" in event:
                last = event["last_affected"]
            elif "limit" in event:
                limit = event["limit"]
            else:
                continue
            if introduced is None or not (fixed or last or limit):
                continue
            if _within(ecosystem, version, introduced, fixed, last, limit):
                hit, fix_for_hit = True, fixed
            introduced = None
        if introduced is not None and _within(ecosystem, version, introduced, "", "", ""):
            hit = True  # introduced, never fixed
        if hit:
            return True, fix_for_hit
    return False, ""


def _within(
    ecosystem: str, version: str, introduced: str, fixed: str, last: str, limit: str
) -> bool:
    cmp = versions.compare
    if introduced != "0" and cmp(ecosystem, version, introduced) < 0:
        return False
    if fixed and cmp(ecosystem, version, fixed) >= 0:
        return False
    if last and cmp(ecosystem, version, last) > 0:
        return False
    return not (limit and limit != "*" and cmp(ecosystem, version, limit) >= 0)


def match(index: OsvIndex, found: list[Package], release: dict[str, str]) -> list[Finding]:
    findings = set()
    for package in found:
        target = ecosystem_of(package, release)
        if target is None:
            continue
        ecosystem, name = target
        for entry in index.lookup(ecosystem, name):
            hit, fixed = affects(ecosystem, package.version, entry)
            if hit:
                findings.add(
                    Finding(
                        package=package.name,
                        version=package.version,
                        fixed=fixed,
                        vulnerability=entry["id"],
                        aliases=tuple(entry.get("aliases", [])),
                        severity=entry.get("severity", "unknown"),
                        ecosystem=ecosystem,
                    )
                )
    order = {s: i for i, s in enumerate(SEVERITIES)}
    return sorted(findings, key=lambda f: (order.get(f.severity, 9), f.package, f.vulnerability))


def summary(findings: list[Finding]) -> dict[str, int]:
    counts = {s: 0 for s in SEVERITIES}
    for f in findings:
        counts[f.severity if f.severity in counts else "unknown"] += 1
    return counts
