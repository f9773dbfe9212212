"""`qreg cache serve|add|list|remove` and `qreg user set-cache`: geographic caches."""

from __future__ import annotations

import argparse
import datetime
import sys
from typing import Any

from cli.client import ManagementClient, signed_in
from cli.output import table


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "cache",
        help="geographic caches: run one, register it, list them",
        description="A cache node near a group of users keeps the blobs they pull. Users "
        "still pull from the cluster's URL; a replica redirects the blob requests "
        "of a user who chose a cache (qreg user set-cache) there, with a short "
        "grant the cache checks. Manifests always come from the cluster.",
        epilog="examples:\n  qreg cache serve --config cache.toml\n"
        "  qreg cache add --name eu --url https://cache.eu.example:5443 --region europe\n"
        "  qreg user set-cache orca eu\n  qreg cache list",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    a = actions.add_parser(
        "serve",
        help="run a cache node from its config file",
        description="Run a cache node in the foreground. The config's "
        "docstring in cache/config.py lists every key.",
    )
    a.add_argument("--config", required=True, metavar="FILE")
    a.set_defaults(func=_serve)
    a = actions.add_parser("add", help="register a cache with the cluster")
    a.add_argument(
        "--name",
        required=True,
        help="the name users choose (qreg user set-cache) and the cache's config names",
    )
    a.add_argument("--url", required=True, help="https://host:port, as clients reach it")
    a.add_argument("--region", default="", help="where it is, for people: eu-west, ap-south")
    a.add_argument("--upstream", default="", help="another cache to fetch misses from")
    a.set_defaults(func=signed_in("cache add", _add))
    a = actions.add_parser("list", help="registered caches and their health")
    a.set_defaults(func=signed_in("cache list", _list))
    a = actions.add_parser("remove", help="unregister a cache; its users pull from the cluster")
    a.add_argument("name")
    a.set_defaults(func=signed_in("cache remove", _remove))


def register_user_setting(users: Any) -> None:
    p = users.add_parser(
        "set-cache",
        help="choose the cache a user pulls blobs from",
        usage="qreg user set-cache USER [USER ...] CACHE",
        description="Give a user (or many at once, for admins) a preferred "
        "cache; 'none' sends them back to the cluster.",
        epilog="examples:\n  qreg user set-cache orca eu\n"
        "  qreg user set-cache orca moby ahab eu\n"
        "  qreg user set-cache orca none",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "names",
        nargs="+",
        metavar="USER... CACHE",
        help="one or more users, then a registered cache's name (or none)",
    )
    p.set_defaults(func=signed_in("user set-cache", _set_cache))


def _serve(args: argparse.Namespace) -> int:
    from cache.config import ConfigError, load

    try:
        config = load(args.config)
    except ConfigError as e:
        print(f"qreg cache serve: {e}", file=sys.stderr)
        return 2
    from cache.server import serve  # heavy imports; --help stays fast

    serve(config)
    return 0


def _add(client: ManagementClient, args: argparse.Namespace) -> int:
    client.add_cache(args.name, args.url, args.region, args.upstream)
    print(f"registered cache {args.name} at {args.url}")
    return 0


def _health(cache: dict[str, Any]) -> str | None:
    if cache["up"] is None:
        return "not checked yet"
    when = datetime.datetime.fromtimestamp(cache["checked_at"]).strftime("%H:%M:%S")
    return f"up ({when})" if cache["up"] else f"down ({when}: {cache['error']})"


def _list(client: ManagementClient, args: argparse.Namespace) -> int:
    rows = [
        [c["name"], c["url"], c["region"] or None, c["upstream"] or "cluster", _health(c)]
        for c in client.caches()
    ]
    print(table(["name", "url", "region", "upstream", "health"], rows))
    return 0


def _remove(client: ManagementClient, args: argparse.Namespace) -> int:
    client.remove_cache(args.name)
    print(f"removed cache {args.name}")
    return 0


def _set_cache(client: ManagementClient, args: argparse.Namespace) -> int:
    if len(args.names) < 2:
        raise ValueError("give one or more users, then the cache (or none)")
    users, cache = args.names[:-1], args.names[-1]
    if len(users) > 1 and cache != "none":
        client.assign_cache(cache, users)
    else:
        for user in users:
            client.set_cache(user, "" if cache == "none" else cache)
    print(f"{', '.join(users)}: {cache}")
    return 0
