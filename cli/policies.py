"""`qreg repo immutable|retention|policy`, `qreg quota` and `qreg usage`: repository
policies, namespace quotas and storage used."""

from __future__ import annotations

import argparse
from typing import Any

from cli import output
from cli.client import ManagementClient, signed_in
from cli.output import table

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(text: str) -> int:
    """'500M', '20G', '1.5T', '1048576' -> bytes (binary units)."""
    value = text.strip().lower().removesuffix("ib").removesuffix("b")
    unit = value[-1] if value and value[-1] in _UNITS else ""
    number = value[: -len(unit)] if unit else value
    try:
        return int(float(number) * _UNITS[unit])
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size (as 500M, 20G)") from None


def add_repo_actions(actions: Any) -> None:
    """The policy actions of `qreg repo`."""
    p = actions.add_parser(
        "immutable",
        help="make tags immutable (or not): never pushed again, never deleted",
        description="Once on, pushing a different image to an existing tag is refused, and "
        "deleting the tag (or its image, or the repository) needs immutability lifted first.",
        epilog="examples:\n  qreg repo immutable engineering/barca on\n"
        "  qreg repo immutable engineering/barca on --pattern 'v*'\n"
        "  qreg repo immutable engineering/barca off",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("name", help="NAMESPACE/NAME")
    p.add_argument("state", choices=("on", "off"))
    p.add_argument("--pattern", default="", help="only tags matching this glob (as 'v*')")
    p.set_defaults(func=signed_in("repo immutable", _immutable))
    p = actions.add_parser(
        "retention",
        help="prune old tags on each garbage collection (keep the newest N, drop old ones)",
        description="Retention runs before every garbage collection (qreg gc run, and the "
        "schedule): it removes the tags its rules choose, and an image whose last tag it "
        "was; every pruned tag is in the audit log. `qreg gc run --dry-run` lists them.",
        epilog="examples:\n  qreg repo retention ci/app --keep-newest 20 --pattern 'build-*'\n"
        "  qreg repo retention ci/app --older-than-days 90 --keep 'release-*'\n"
        "  qreg repo retention ci/app --off",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("name", help="NAMESPACE/NAME")
    p.add_argument("--keep-newest", type=int, default=0, metavar="N")
    p.add_argument("--older-than-days", type=int, default=0, metavar="DAYS")
    p.add_argument("--pattern", default="", help="only prune tags matching this glob")
    p.add_argument("--keep", default="", help="never prune tags matching this glob")
    p.add_argument("--off", action="store_true", help="no retention rules")
    p.set_defaults(func=signed_in("repo retention", _retention))
    p = actions.add_parser(
        "vulnerabilities",
        help="refuse pulls of images with vulnerabilities this bad or worse",
        epilog="examples:\n  qreg repo vulnerabilities lib/app --block high\n"
        "  qreg repo vulnerabilities lib/app --block high --allow CVE-2023-5363\n"
        "  qreg repo vulnerabilities lib/app --off",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("name", help="NAMESPACE/NAME")
    p.add_argument("--block", choices=("critical", "high", "medium", "low"))
    p.add_argument("--allow", action="append", default=[], metavar="ID", help="never refuse for it")
    p.add_argument("--off", action="store_true", help="never refuse a pull")
    p.set_defaults(func=signed_in("repo vulnerabilities", _vulnerabilities))
    p = actions.add_parser("policy", help="show a repository's immutability and retention")
    p.add_argument("name", help="NAMESPACE/NAME")
    p.set_defaults(func=signed_in("repo policy", _show))


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "usage",
        help="storage used per namespace and repository, with quotas",
        description="Bytes of the distinct blobs each repository's images use (a layer "
        "shared by two of its images counted once), what only it uses, each namespace's "
        "total against its quota, and the cluster's total. Administrators only.",
    )
    p.set_defaults(func=signed_in("usage", _usage))
    p = subparsers.add_parser(
        "quota",
        help="set a namespace's storage quota",
        description="A push that would take the namespace over its quota is refused with "
        "DENIED and a message giving the quota and the usage. Administrators only.",
        epilog="examples:\n  qreg quota engineering 50G\n  qreg quota engineering none",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("namespace")
    p.add_argument("size", help="as 500M, 20G, 1T; 'none' removes the quota")
    p.set_defaults(func=signed_in("quota", _quota))


def _policy(client: ManagementClient, name: str) -> dict[str, Any]:
    return dict(client.call("GET", f"/repositories/{name}/policy"))


def _put(client: ManagementClient, name: str, policy: dict[str, Any]) -> dict[str, Any]:
    return dict(client.call("PUT", f"/repositories/{name}/policy", policy))


def _immutable(client: ManagementClient, args: argparse.Namespace) -> int:
    policy = _policy(client, args.name)
    policy["immutable_tags"] = args.state == "on"
    policy["immutable_pattern"] = args.pattern if args.state == "on" else None
    _put(client, args.name, policy)
    covered = f"tags matching {args.pattern}" if args.pattern else "every tag"
    print(f"{args.name}: {covered} immutable" if args.state == "on" else f"{args.name}: mutable")
    return 0


def _retention(client: ManagementClient, args: argparse.Namespace) -> int:
    policy = _policy(client, args.name)
    policy["retention"] = (
        {}
        if args.off
        else {
            "keep_newest": args.keep_newest or None,
            "max_age_days": args.older_than_days or None,
            "prune_pattern": args.pattern or None,
            "keep_pattern": args.keep or None,
        }
    )
    if not args.off and not args.keep_newest and not args.older_than_days:
        raise ValueError("give --keep-newest N and/or --older-than-days DAYS (or --off)")
    _show_policy(args.name, _put(client, args.name, policy))
    return 0


def _vulnerabilities(client: ManagementClient, args: argparse.Namespace) -> int:
    policy = _policy(client, args.name)
    if args.off:
        policy["vulnerabilities"] = {}
    elif not args.block:
        raise ValueError("give --block SEVERITY (or --off)")
    else:
        policy["vulnerabilities"] = {"block_severity": args.block, "allowed": args.allow}
    _show_policy(args.name, _put(client, args.name, policy))
    return 0


def _show(client: ManagementClient, args: argparse.Namespace) -> int:
    _show_policy(args.name, _policy(client, args.name))
    return 0


def _show_policy(name: str, policy: dict[str, Any]) -> None:
    if policy["immutable_tags"]:
        print(f"immutable: {policy['immutable_pattern'] or 'every tag'}")
    else:
        print("immutable: no")
    rules = policy["retention"]
    parts = []
    if rules.get("keep_newest"):
        parts.append(f"keep the newest {rules['keep_newest']}")
    if rules.get("max_age_days"):
        parts.append(f"prune after {rules['max_age_days']} days")
    if parts and rules.get("prune_pattern"):
        parts.append(f"of tags matching {rules['prune_pattern']}")
    if parts and rules.get("keep_pattern"):
        parts.append(f"never {rules['keep_pattern']}")
    print(f"retention of {name}: {', '.join(parts) if parts else 'none'}")
    rules = policy.get("vulnerabilities") or {}
    if rules.get("block_severity"):
        allowed = f" (except {', '.join(rules['allowed'])})" if rules.get("allowed") else ""
        print(f"pulls refused for {rules['block_severity']} vulnerabilities or worse{allowed}")


def _usage(client: ManagementClient, args: argparse.Namespace) -> int:
    found = client.call("GET", "/usage")
    print(f"cluster: {output.size(found['total_bytes'])} in {found['total_blobs']} blobs\n")
    print(
        table(
            ["namespace", "used", "quota", "of quota"],
            [
                [
                    n["name"],
                    output.size(n["bytes"]),
                    output.size(n["quota_bytes"]),
                    f"{100 * n['bytes'] / n['quota_bytes']:.0f}%" if n["quota_bytes"] else None,
                ]
                for n in found["namespaces"]
            ],
        )
    )
    print()
    print(
        table(
            ["repository", "used", "only it uses"],
            [
                [r["name"], output.size(r["bytes"]), output.size(r["exclusive_bytes"])]
                for r in found["repositories"]
            ],
        )
    )
    return 0


def _quota(client: ManagementClient, args: argparse.Namespace) -> int:
    size = 0 if args.size.lower() in ("none", "0", "off") else parse_size(args.size)
    client.call("PUT", f"/namespaces/{args.namespace}/quota", {"bytes": size})
    print(f"{args.namespace}: quota {output.size(size) if size else 'none'}")
    return 0
