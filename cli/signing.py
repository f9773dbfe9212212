"""`qreg repo tags` and `qreg repo signed-only`: a repository's tags with what signs
them, and the policy that refuses pulls of unsigned tags."""

from __future__ import annotations

import argparse
import datetime
from typing import Any

from cli.client import ManagementClient, signed_in
from cli.output import table


def add_repo_actions(actions: Any) -> None:
    p = actions.add_parser(
        "tags",
        help="a repository's tags: digest, who pushed them, and whether they are signed",
        description="Each tag with its digest, when and by whom it was pushed, and its "
        "content-trust status: 'signed' lists the signer roles (targets, "
        "targets/releases, targets/<signer>) whose valid signatures name the tag's "
        "current digest; 'stale' means the tag was moved after it was signed. Sign with "
        "`docker trust sign` or `notary`.",
        epilog="examples:\n  qreg repo tags lib/app\n  qreg repo tags lib/app --tag v1",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("name", help="NAMESPACE/NAME")
    p.add_argument("--tag", help="one tag, with every signature (referrers too)")
    p.set_defaults(func=signed_in("repo tags", _tags))
    p = actions.add_parser(
        "signed-only",
        help="refuse pulls of tags without a valid content-trust signature",
        description="With the policy on, a pull by tag of a tag that no accepted signer "
        "signed (at its current digest) is refused with DENIED and the reason; a pull by "
        "digest works only for signed digests (and the images a signed index names). "
        "Clients that check trust themselves (DOCKER_CONTENT_TRUST=1) are unaffected. "
        "Repository administrators only; the change is audited.",
        epilog="examples:\n  qreg repo signed-only lib/app on\n"
        "  qreg repo signed-only lib/app on --signer releases --signer alice\n"
        "  qreg repo signed-only lib/app off",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("name", help="NAMESPACE/NAME")
    p.add_argument("state", choices=("on", "off"))
    p.add_argument(
        "--signer",
        action="append",
        default=[],
        help="a signer whose signature counts (a name as in `docker trust signer add`, or "
        "a role as targets/releases); repeat for several; none: any signer",
    )
    p.set_defaults(func=signed_in("repo signed-only", _signed_only))


def _tags(client: ManagementClient, args: argparse.Namespace) -> int:
    if args.tag:
        _one_tag(dict(client.call("GET", f"/repositories/{args.name}/tags/{args.tag}")))
        return 0
    rows: list[list[Any]] = []
    last = ""
    while True:
        page = client.call("GET", f"/repositories/{args.name}/tags?n=1000&last={last}")
        for t in page["tags"]:
            rows.append(
                [
                    t["name"],
                    t["digest"][:19],
                    _when(t.get("pushed_at_ms")),
                    t.get("pushed_by"),
                    _signed(t),
                ]
            )
        if not page.get("next"):
            break
        last = page["next"]
    print(table(["tag", "digest", "pushed", "by", "signed"], rows))
    return 0


def _signed(t: dict[str, Any]) -> str:
    if t["signed"]:
        return "signed: " + ", ".join(t["signers"])
    if t["stale"]:
        return "stale (moved after signing)"
    return "no"


def _one_tag(t: dict[str, Any]) -> None:
    print(f"{t['name']}  {t['digest']}")
    print(f"pushed {_when(t.get('pushed_at_ms'))} by {t.get('pushed_by') or 'unknown'}")
    print(f"signed: {_signed(t)}")
    if t["trust"]:
        print(
            table(
                ["gun", "role", "signed digest", "valid", "current"],
                [
                    [s["gun"], s["role"], s["digest"][:19], _yes(s["valid"]), _yes(s["matches"])]
                    for s in t["trust"]
                ],
            )
        )
    others = t.get("other_signatures") or []
    if others:
        print("other signatures (OCI referrers, not verified by the registry):")
        print(table(["kind", "digest"], [[o["kind"], o["digest"][:19]] for o in others]))
    policy = t.get("signed_only_policy") or {}
    if policy.get("on"):
        signers = ", ".join(policy.get("accepted_signers") or []) or "any signer"
        print(f"policy: only signed tags ({signers})")


def _signed_only(client: ManagementClient, args: argparse.Namespace) -> int:
    policy = dict(client.call("GET", f"/repositories/{args.name}/policy"))
    policy["signing"] = {"signed_only": args.state == "on", "accepted_signers": args.signer}
    saved = client.call("PUT", f"/repositories/{args.name}/policy", policy)["signing"]
    if saved["signed_only"]:
        signers = ", ".join(saved["accepted_signers"]) or "any signer"
        print(f"{args.name}: pulls need a signature by {signers}")
    else:
        print(f"{args.name}: unsigned tags may be pulled")
    return 0


def _when(ms: int | None) -> str | None:
    if not ms:
        return None
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC).strftime("%Y-%m-%d %H:%M")


def _yes(value: bool) -> str:
    return "yes" if value else "no"
