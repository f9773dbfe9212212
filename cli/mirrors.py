"""`qreg mirror`: images moved between this cluster and other registries on their own."""

from __future__ import annotations

import argparse
from typing import Any

from cli.client import ManagementClient, signed_in
from cli.session import read_password
from cli.webhooks import add_target_options, target_settings

_KINDS = {"push": "push_mirror", "pull": "pull_mirror", "proxy": "proxy"}


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "mirror",
        help="copy images to or from other registries; proxy namespaces",
        description="push   each tag pushed to REPO here is copied to TARGET on another\n"
        "       registry, retried with backoff like a webhook's deliveries.\n"
        "pull   TARGET's new or moved tags are copied into REPO here every --every s.\n"
        "proxy  NAMESPACE/ here is a read-through cache of the registry at TARGET\n"
        "       (administrators): pulling NAMESPACE/library/alpine:3 fetches\n"
        "       library/alpine:3 there once and keeps it; pushes there are refused.\n\n"
        "Credentials for the other registry are kept sealed in the cluster. Mirrors and\n"
        "proxies are listed, shown and removed with `qreg webhook list|show|remove`.",
        epilog="examples:\n"
        "  qreg mirror push team/app https://backup.example.com/team/app --tags 'v*'\n"
        '  echo "$TOKEN" | qreg mirror pull vendor/db https://registry.vendor.com/db/server \\\n'
        "      --username robot --password-stdin --every 600\n"
        "  qreg mirror proxy dockerhub/ https://registry-1.docker.io --recheck 3600\n"
        "  qreg webhook show 3f2a…      # the status of each tag copied",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("kind", choices=list(_KINDS), help="push, pull or proxy")
    p.add_argument("local", metavar="REPO|NAMESPACE/", help="the repository (proxy: NS/) here")
    p.add_argument(
        "target",
        metavar="TARGET",
        help="https://HOST[:PORT]/NS/NAME (proxy: https://HOST[:PORT][/PREFIX])",
    )
    p.add_argument("--tags", default="", help="only tags matching this glob (push, pull)")
    p.add_argument("--every", type=int, help="seconds between looks at TARGET (pull; default 300)")
    p.add_argument(
        "--recheck",
        type=int,
        help="seconds before a cached tag is checked upstream again (proxy; 3600)",
    )
    p.add_argument("--username", default="", help="an account on the other registry")
    p.add_argument(
        "--password-stdin",
        action="store_true",
        help="read its password or token from stdin (else asked for with --username)",
    )
    add_target_options(p, "the other registry")
    p.set_defaults(func=signed_in("mirror", _add))


def _add(client: ManagementClient, args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"kind": _KINDS[args.kind], "scope": args.local, "url": args.target}
    if args.tags:
        body["tag_pattern"] = args.tags
    interval = args.every if args.kind == "pull" else args.recheck
    if interval:
        body["interval_s"] = interval
    if args.username:
        body["username"] = args.username
        body["password"] = read_password(args.password_stdin, f"Password of {args.username}: ")
    body.update(target_settings(args))
    made = client.call("POST", "/webhooks", body)
    what = {
        "push": f"tags pushed to {made['scope']} are copied to {made['url']}",
        "pull": f"{made['url']}'s tags are copied into {made['scope']} "
        f"every {made.get('interval_s') or 300} s",
        "proxy": f"{made['scope']} is a read-through cache of {made['url']}",
    }[args.kind]
    print(f"{args.kind} {'mirror ' if args.kind != 'proxy' else ''}{made['id']}: {what}")
    return 0
