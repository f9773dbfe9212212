"""Package databases found in image layers, parsed into (ecosystem kind, name, version,
source): dpkg's status (and distroless status.d/), apk's installed, Python dist-info
and egg-info metadata, npm package.json; and the OS release."""

from __future__ import annotations

import email.parser
import json
import re
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Package:
    kind: str  # "deb", "apk", "pypi", "npm"
    name: str
    version: str
    source: str = ""  # the source package (Debian) or origin (Alpine) advisories name

    def as_dict(self) -> dict[str, str]:
        return {k: v for k, v in asdict(self).items() if v}


def _stanzas(text: str) -> list[dict[str, str]]:
    found = []
    for block in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = ""
        for line in block.splitlines():
            if line[:1] in (" ", "\t") and key:
                fields[key] += "\n" + line.strip()
            elif ":" in line:
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
        if fields:
            found.append(fields)
    return found


def dpkg_status(text: str) -> list[Package]:
    """Installed packages of a dpkg status file (or a status.d/ entry)."""
    found = []
    for fields in _stanzas(text):
        name, version = fields.get("Package"), fields.get("Version")
        status = fields.get("Status", "install ok installed")
        if not name or not version or not status.endswith(" installed"):
            continue
        source = fields.get("Source", "")
        # "Source: name (version)" when the source version differs.
        source_name = source.split(" ", 1)[0] if source else name
        found.append(Package("deb", name, version, source_name))
    return found


def apk_installed(text: str) -> list[Package]:
    """Packages of apk's lib/apk/db/installed (P: name, V: version, o: origin)."""
    found = []
    for block in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {
            line[0]: line[2:].strip()
            for line in block.splitlines()
            if len(line) > 2 and line[1] == ":"
        }
        if fields.get("P") and fields.get("V"):
            found.append(Package("apk", fields["P"], fields["V"], fields.get("o", fields["P"])))
    return found


def python_metadata(text: str) -> list[Package]:
    """A dist-info METADATA or egg-info PKG-INFO file."""
    message = email.parser.Parser().parsestr(text, headersonly=True)
    name, version = message.get("Name"), message.get("Version")
    if not name or not version:
        return []
    return [Package("pypi", _normalise_python(name), version)]


def _normalise_python(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def npm_package(text: str) -> list[Package]:
    try:
        doc = json.loads(text)
    except ValueError:
        return []
    if not isinstance(doc, dict):
        return []
    name, version = doc.get("name"), doc.get("version")
    if not isinstance(name, str) or not isinstance(version, str):
        return []
    return [Package("npm", name, version)]


def os_release(text: str) -> dict[str, str]:
    """ID and VERSION_ID of an os-release file."""
    found = {}
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key in ("ID", "VERSION_ID"):
            found[key] = value.strip().strip('"').strip("'")
    return found
