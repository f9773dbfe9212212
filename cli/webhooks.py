"""`qreg events` and `qreg webhook`: what happened to repositories, and who is told."""

from __future__ import annotations

import argparse
import datetime
import json
import time
from typing import Any
from urllib.parse import urlencode

from cli.client import ManagementClient, signed_in
from cli.output import table

_TYPES = "push, tag_delete, manifest_delete, repository_delete, sign, trust_delete, scan, refusal"


def register(subparsers: Any) -> None:
    e = subparsers.add_parser(
        "events",
        help="what happened: pushes, deletions, signing, scans, refusals",
        description=f"Events of the repositories you may pull, oldest first. Types: {_TYPES}.",
        epilog="examples:\n  qreg events --repository ci/app --type push --since 1h\n"
        "  qreg events --follow                 # new events as they happen\n"
        "  qreg events --json | jq .",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    e.add_argument("--repository", default="", help="NS/NAME, or NS/ for a namespace")
    e.add_argument("--type", action="append", default=[], help="an event type (repeatable)")
    e.add_argument("--since", default="", help="as 30m, 2h, 7d, or an ISO 8601 time")
    e.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    e.add_argument("--follow", action="store_true", help="keep printing new events")
    e.add_argument("--json", action="store_true", help="one JSON object per line")
    e.set_defaults(func=signed_in("events", _events))
    _register_webhooks(subparsers)


def _register_webhooks(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "webhook",
        help="tell other systems what happened (signed HTTP POSTs)",
        description="A webhook POSTs each event it wants as JSON to its URL, signed: "
        "X-Qreg-Signature-256 is sha256=HMAC-SHA256(secret, body); X-Qreg-Delivery is "
        "the same on every retry of an event. One replica delivers each webhook; failed "
        "deliveries are retried after 1, 2, 4 ... seconds for a day.",
        epilog="examples:\n"
        "  qreg webhook add https://ci.example.com/hooks/registry --scope ci/ --event push\n"
        "  qreg webhook list\n  qreg webhook show 3f2a…\n  qreg webhook test 3f2a…\n"
        "  qreg webhook redeliver 3f2a… 1234560000",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="webhook_command", required=True, metavar="ACTION")
    a = sub.add_parser("add", help="make a webhook (its secret is printed once)")
    a.add_argument("url")
    a.add_argument("--scope", default="", help="NS/NAME, NS/ (a namespace), or all (admins)")
    a.add_argument("--event", action="append", default=[], help=f"one of {_TYPES} (default all)")
    add_target_options(a, "the receiver")
    a.set_defaults(func=signed_in("webhook add", _add))
    sub.add_parser("list", help="the webhooks you manage").set_defaults(
        func=signed_in("webhook list", _list)
    )
    for name, helptext, func in (
        ("show", "a webhook and its latest deliveries", _show),
        ("remove", "delete a webhook", _remove),
        ("test", "deliver a ping now", _test),
        ("pause", "stop delivering (events wait)", _pause),
        ("resume", "deliver again, from where it stopped", _resume),
    ):
        s = sub.add_parser(name, help=helptext)
        s.add_argument("id")
        s.set_defaults(func=signed_in(f"webhook {name}", func))
    r = sub.add_parser("redeliver", help="deliver an event again")
    r.add_argument("id")
    r.add_argument("event", type=int)
    r.set_defaults(func=signed_in("webhook redeliver", _redeliver))


def add_target_options(parser: argparse.ArgumentParser, whose: str) -> None:
    """--ca-file and --allow-private: how a webhook, mirror or proxy reaches its target."""
    parser.add_argument("--ca-file", help=f"{whose}'s CA (PEM), if not a public one")
    parser.add_argument(
        "--allow-private",
        action="store_true",
        help="let it reach loopback or private addresses (administrators)",
    )


def target_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The API keys of the options add_target_options made."""
    settings: dict[str, Any] = {}
    if args.ca_file:
        with open(args.ca_file) as f:
            settings["ca_pem"] = f.read()
    if args.allow_private:
        settings["allow_private"] = True
    return settings


def _since(text: str) -> str:
    units = {"m": 60, "h": 3600, "d": 86400}
    if text and text[-1] in units and text[:-1].isdigit():
        return str(int((time.time() - int(text[:-1]) * units[text[-1]]) * 1000))
    return text


def _when(ms: int) -> str:
    return datetime.datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


def _events(client: ManagementClient, args: argparse.Namespace) -> int:
    query: list[tuple[str, str]] = [("n", str(min(args.limit, 1000)))]
    query += [("repository", args.repository)] if args.repository else []
    query += [("type", t) for t in args.type]
    query += [("since", _since(args.since))] if args.since else []
    after, printed = 0, False
    while True:
        page = client.call("GET", "/events?" + urlencode([*query, ("after", str(after))]))
        found = page["events"]
        if args.json:
            for event in found:
                print(json.dumps(event), flush=True)
        elif found or not printed:
            rows = [
                [e["id"], _when(e.get("at_ms", 0)), e["type"], e.get("repository", ""),
                 e.get("tag") or (e.get("digest") or "")[:19], e.get("actor", "")]
                for e in found
            ]  # fmt: skip
            text = table(["id", "when", "type", "repository", "tag/digest", "by"], rows)
            print(text if not printed else "\n".join(text.splitlines()[2:]), flush=True)
            printed = printed or bool(found)
        if found:
            after = found[-1]["id"]
        if page["next"]:
            after = page["next"]
            continue
        if not args.follow:
            return 0
        time.sleep(2)


def _add(client: ManagementClient, args: argparse.Namespace) -> int:
    body: dict[str, Any] = {
        "url": args.url,
        "scope": "" if args.scope in ("", "all") else args.scope,
        "events": args.event,
        **target_settings(args),
    }
    made = client.call("POST", "/webhooks", body)
    print(f"webhook {made['id']} posts {', '.join(made['events']) or 'every event'} of "
          f"{made['scope'] or 'every repository'} to {made['url']}")  # fmt: skip
    if made.get("secret"):
        print(f"secret (shown once; verify X-Qreg-Signature-256 with it): {made['secret']}")
    return 0


def _list(client: ManagementClient, args: argparse.Namespace) -> int:
    hooks = client.call("GET", "/webhooks")["webhooks"]
    rows = [[h["id"], h["kind"], h["scope"] or "(all)", ", ".join(h["events"]) or "all",
             h["url"], "on" if h["active"] else "paused"] for h in hooks]  # fmt: skip
    headers = ["id", "kind", "scope", "events", "url", "state"]
    print(table(headers, rows) if rows else "no webhooks, mirrors or proxies")
    return 0


def _show(client: ManagementClient, args: argparse.Namespace) -> int:
    hook = client.call("GET", f"/webhooks/{args.id}")
    state = "on" if hook["active"] else "paused"
    by = hook["delivered_by"] or "nobody yet"
    print(f"{hook['id']}: {hook['url']} ({state}), scope {hook['scope'] or '(all)'}, by {by}")
    rows = [[d.get("tag") or d["event"], d["status"], d["code"] or "-", d["attempts"],
             _when(d["at_ms"]), f"{d['millis']} ms", d["excerpt"][:60]]
            for d in hook["deliveries"]]  # fmt: skip
    headers = ["tag" if hook["kind"] == "pull_mirror" else "event", "status", "code",
               "attempts", "when", "took", "answer"]  # fmt: skip
    print(table(headers, rows) if rows else "no deliveries yet")
    return 0


def _remove(client: ManagementClient, args: argparse.Namespace) -> int:
    client.call("DELETE", f"/webhooks/{args.id}")
    print(f"webhook {args.id} deleted")
    return 0


def _test(client: ManagementClient, args: argparse.Namespace) -> int:
    found = client.call("POST", f"/webhooks/{args.id}/test")
    print(f"ping: {found['code'] or 'no answer'} in {found['millis']} ms: {found['excerpt'][:200]}")
    return 0 if found["ok"] else 1


def _pause(client: ManagementClient, args: argparse.Namespace) -> int:
    client.call("PATCH", f"/webhooks/{args.id}", {"active": False})
    print(f"webhook {args.id} paused")
    return 0


def _resume(client: ManagementClient, args: argparse.Namespace) -> int:
    client.call("PATCH", f"/webhooks/{args.id}", {"active": True})
    print(f"webhook {args.id} delivers again")
    return 0


def _redeliver(client: ManagementClient, args: argparse.Namespace) -> int:
    client.call("POST", f"/webhooks/{args.id}/deliveries/{args.event}/redeliver")
    print(f"event {args.event} will be delivered again")
    return 0
