"""`qreg login` and the session it leaves: which cluster, who, and a refresh token.

The password is never stored. Login trades it for a refresh token (valid 90 days,
voided by a password change), kept in ~/.config/qreg/login.json (mode 0600, or
$QREG_LOGIN_FILE); each later command trades that for a five-minute access token.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import ssl
import sys
from dataclasses import asdict, dataclass
from typing import Any

import httpx

from cli.output import error_text, fail

SERVICE = "quorum-registry"


@dataclass
class Session:
    url: str
    user: str
    refresh_token: str
    ca: str = ""  # the cluster CA to trust, besides the system's roots

    def verify(self) -> ssl.SSLContext:
        return trust(self.ca)


class NotSignedIn(Exception):
    pass


def trust(ca: str) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if ca:
        context.load_verify_locations(ca)
    return context


def login_file() -> str:
    return os.environ.get("QREG_LOGIN_FILE") or os.path.join(
        os.path.expanduser("~"), ".config", "qreg", "login.json"
    )


def load() -> Session:
    try:
        with open(login_file()) as f:
            return Session(**json.load(f))
    except (OSError, ValueError, TypeError):
        raise NotSignedIn("not signed in: run qreg login URL first") from None


def save(session: Session) -> None:
    path = login_file()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(asdict(session), f)
    os.replace(path + ".tmp", path)


def read_password(from_stdin: bool, prompt: str = "Password: ", confirm: bool = False) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    if not sys.stdin.isatty():
        raise ValueError("no terminal to ask for a password on: pass --password-stdin")
    password = getpass.getpass(prompt)
    if confirm and getpass.getpass("Again: ") != password:
        raise ValueError("the passwords differ")
    return password


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "login",
        help="sign in to a cluster for the account commands (user, org, team, ...)",
        description="Check a user's password (or personal access token) with the cluster and "
        "keep a refresh token for the account commands. The password itself is "
        "not stored. For docker, podman and skopeo use their own login command.",
        epilog="examples:\n  qreg login https://127.0.0.1:5000 -u admin --ca ./data/ca.crt\n"
        '  echo "$PAT" | qreg login https://registry.example.com -u ci --password-stdin',
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("url", help="any replica's URL (or the load balancer's)")
    p.add_argument("-u", "--username", default="admin", help="account name (default admin)")
    p.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password (or token) from standard input",
    )
    p.add_argument(
        "--ca",
        default="",
        help="the cluster CA certificate (qreg up writes DATA/ca.crt; any replica "
        "serves it at /ca)",
    )
    p.set_defaults(func=run_login)
    p = subparsers.add_parser("logout", help="forget the session qreg login kept")
    p.set_defaults(func=run_logout)


def run_login(args: argparse.Namespace) -> int:
    url = args.url.rstrip("/")
    ca = os.path.abspath(args.ca) if args.ca else ""
    try:
        password = read_password(args.password_stdin)
        r = httpx.get(
            f"{url}/auth/token",
            params={"service": SERVICE, "offline_token": "true"},
            auth=(args.username, password),
            verify=trust(ca),
            timeout=30,
        )
    except (ValueError, OSError, httpx.HTTPError) as e:
        return fail("login", str(e))
    if r.status_code != 200:
        return fail("login", error_text(r))
    save(Session(url, args.username, r.json()["refresh_token"], ca))
    print(f"signed in to {url} as {args.username}")
    return 0


def run_logout(args: argparse.Namespace) -> int:
    try:
        os.unlink(login_file())
    except FileNotFoundError:
        pass
    print("signed out")
    return 0
