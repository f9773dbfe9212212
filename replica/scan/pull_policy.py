"""A repository may refuse pulls of images whose scan found vulnerabilities at or above
a severity (Harbor's "prevent vulnerable images from running"), except the ids on its
allow-list. An image not scanned yet is served: scanning follows every push within
seconds, and refusing every new image until then would break deploys."""

from __future__ import annotations

from consensus import MetadataState, scans
from proto import commands_pb2 as pb
from replica.errors import Denied
from replica.scan.osv import SEVERITIES
from replica.scan.scanner import decode_findings


def check_pull(
    state: MetadataState, rules: pb.RepositoryPolicy, repository: str, digest: str
) -> None:
    if not rules.block_severity:
        return
    report = state.view(scans.report, digest)
    if report is None:
        return
    worst = SEVERITIES.index(rules.block_severity)
    # Every manifest GET comes here: the summary's counts settle most cases without
    # decoding the findings.
    if not any(report.summary.get(s, 0) for s in SEVERITIES[: worst + 1]):
        return
    allowed = set(rules.allowed_vulnerabilities)
    blocking = [
        f
        for f in decode_findings(report)
        if f["severity"] in SEVERITIES
        and SEVERITIES.index(f["severity"]) <= worst
        and f["vulnerability"] not in allowed
        and not allowed.intersection(f.get("aliases") or [])
    ]
    if blocking:
        names = ", ".join(
            f"{f['vulnerability']} ({f['severity']}, {f['package']} {f['version']})"
            for f in blocking[:3]
        )
        more = f" and {len(blocking) - 3} more" if len(blocking) > 3 else ""
        raise Denied(
            f"{repository} refuses images with {rules.block_severity} vulnerabilities or "
            f"worse: {names}{more}",
            detail={"digest": digest, "findings": len(blocking)},
        )
