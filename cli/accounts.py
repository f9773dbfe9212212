"""`qreg user|org|team|repo|token`: accounts and permissions, through the management
API of the cluster `qreg login` signed in to."""

from __future__ import annotations

import argparse
import datetime
import sys
from typing import Any

from cli import policies, signing
from cli import session as sessions
from cli.client import ManagementClient, signed_in
from cli.output import table
from replica.auth import passwords

ROLES = ("none", "read-only", "read-write", "admin")
ACCESS = ("read-only", "read-write", "admin")


def _parser(subparsers: Any, name: str, help: str, description: str, epilog: str) -> Any:
    p = subparsers.add_parser(
        name,
        help=help,
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return p.add_subparsers(dest="action", metavar="ACTION", required=True)


def register(subparsers: Any) -> None:
    _register_users(subparsers)
    _register_orgs(subparsers)
    _register_teams(subparsers)
    _register_repos(subparsers)
    _register_tokens(subparsers)


# ---- users ----------------------------------------------------------------------------


def _register_users(subparsers: Any) -> None:
    actions = _parser(
        subparsers,
        "user",
        "add, list, remove users; change passwords",
        "Users sign in to docker, podman and skopeo with their password or a personal access "
        "token. A global role applies to every repository: read-only (pull all), read-write "
        "(push all) or admin (everything, accounts included); none leaves access to teams "
        "and to the user's own namespace.",
        "examples:\n  qreg user add orca --role read-write\n"
        '  echo "$PW" | qreg user add ci --password-stdin\n  qreg user passwd orca',
    )
    p = actions.add_parser("add", help="create a user (asks for the password)")
    p.add_argument("name")
    p.add_argument("--role", choices=ROLES, default="none", help="global role (default none)")
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    p.set_defaults(func=signed_in("user add", _user_add))
    p = actions.add_parser("list", help="every user and organization")
    p.set_defaults(func=signed_in("user list", _user_list))
    p = actions.add_parser("remove", help="delete a user (their tokens stop working at once)")
    p.add_argument("name")
    p.set_defaults(func=signed_in("user remove", _user_remove))
    p = actions.add_parser(
        "passwd",
        help="set a user's password (voids their earlier tokens)",
        description="Set a user's password. Your own needs your current password first; "
        "an administrator sets anyone else's without it. Every token issued "
        "before stops working, and the user's personal access tokens are revoked "
        "unless --keep-tokens.",
        epilog="examples:\n  qreg user passwd orca\n"
        '  printf \'%s\\n%s\\n\' "$OLD" "$NEW" | qreg user passwd admin --password-stdin',
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("name")
    p.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from stdin (your own: the current one on the "
        "first line, the new one on the second)",
    )
    p.add_argument(
        "--keep-tokens",
        action="store_true",
        help="keep the user's personal access tokens (CI keeps working)",
    )
    p.set_defaults(func=signed_in("user passwd", _user_passwd))
    p = actions.add_parser("role", help="change a user's global role")
    p.add_argument("name")
    p.add_argument("role", choices=ROLES)
    p.set_defaults(func=signed_in("user role", _user_role))
    p = actions.add_parser(
        "hash-password",
        help="print a password's hash for [auth] admin_password_hash",
        description="Print the scrypt hash of a password, for a replica config written by "
        "hand: the admin account a new cluster creates at its first start. Needs no cluster.",
        epilog="example:\n  export QREG_AUTH_ADMIN_PASSWORD_HASH=$(qreg user hash-password)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    p.set_defaults(func=_user_hash_password)
    from cli import caches  # the cache commands own this one

    caches.register_user_setting(actions)


def _user_hash_password(args: argparse.Namespace) -> int:
    try:
        password = sessions.read_password(args.password_stdin, "Password: ", confirm=True)
    except ValueError as e:
        print(f"qreg user hash-password: {e}", file=sys.stderr)
        return 2
    if len(password) < 8:
        print("qreg user hash-password: use at least 8 characters", file=sys.stderr)
        return 2
    print(passwords.hash_password(password))
    return 0


def _user_add(client: ManagementClient, args: argparse.Namespace) -> int:
    password = sessions.read_password(
        args.password_stdin, f"Password for {args.name}: ", confirm=True
    )
    client.add_user(args.name, password, args.role)
    print(f"created user {args.name} ({args.role})")
    return 0


def _user_list(client: ManagementClient, args: argparse.Namespace) -> int:
    rows = [
        [a["name"], "organization" if a["is_org"] else "user", a.get("global_role")]
        for a in client.accounts()
    ]
    print(table(["name", "kind", "global role"], rows))
    return 0


def _user_remove(client: ManagementClient, args: argparse.Namespace) -> int:
    client.remove_account(args.name)
    print(f"removed {args.name}")
    return 0


def _user_passwd(client: ManagementClient, args: argparse.Namespace) -> int:
    changes: dict[str, Any] = {}
    if args.name == client.session.user:  # your own: prove you know the current one
        changes["current_password"] = sessions.read_password(
            args.password_stdin, "Current password: "
        )
    changes["password"] = sessions.read_password(
        args.password_stdin, f"New password for {args.name}: ", confirm=True
    )
    if args.keep_tokens:
        changes["keep_access_tokens"] = True
    client.update_account(args.name, **changes)
    kept = (
        "; personal access tokens kept"
        if args.keep_tokens
        else " and personal access tokens were revoked"
    )
    print(f"changed the password of {args.name}; tokens issued before no longer work{kept}")
    return 0


def _user_role(client: ManagementClient, args: argparse.Namespace) -> int:
    client.update_account(args.name, global_role=args.role)
    print(f"{args.name} is now {args.role}")
    return 0


# ---- organizations --------------------------------------------------------------------


def _register_orgs(subparsers: Any) -> None:
    actions = _parser(
        subparsers,
        "org",
        "add and list organizations",
        "An organization is a namespace for repositories (ORG/NAME) with teams inside. "
        "Members of its team named owners manage its teams and repositories.",
        "examples:\n  qreg org add engineering\n  qreg team add engineering owners",
    )
    p = actions.add_parser("add", help="create an organization")
    p.add_argument("name")
    p.set_defaults(func=signed_in("org add", _org_add))
    p = actions.add_parser("list", help="every organization and its teams")
    p.set_defaults(func=signed_in("org list", _org_list))


def _org_add(client: ManagementClient, args: argparse.Namespace) -> int:
    client.add_org(args.name)
    print(f"created organization {args.name}")
    return 0


def _org_list(client: ManagementClient, args: argparse.Namespace) -> int:
    rows = [
        [a["name"], ", ".join(client.teams(a["name"])) or None]
        for a in client.accounts()
        if a["is_org"]
    ]
    print(table(["organization", "teams"], rows))
    return 0


# ---- teams ----------------------------------------------------------------------------


def _register_teams(subparsers: Any) -> None:
    actions = _parser(
        subparsers,
        "team",
        "teams of an organization: create, members, repository access",
        "A team gives its members access to repositories of its organization: read-only "
        "(pull), read-write (pull and push) or admin (also delete and settings). A user's "
        "access is the union of their global role, their own namespace and every team.",
        "examples:\n  qreg team add engineering core\n"
        "  qreg team members engineering core --add gordon orca\n"
        "  qreg team grant engineering core engineering/barca read-only",
    )
    p = actions.add_parser("add", help="create a team")
    p.add_argument("org")
    p.add_argument("team")
    p.set_defaults(func=signed_in("team add", _team_add))
    p = actions.add_parser("members", help="list members, or add and remove some")
    p.add_argument("org")
    p.add_argument("team")
    p.add_argument("--add", nargs="+", default=[], metavar="USER")
    p.add_argument("--remove", nargs="+", default=[], metavar="USER")
    p.set_defaults(func=signed_in("team members", _team_members))
    p = actions.add_parser("grant", help="set the team's access to a repository")
    p.add_argument("org")
    p.add_argument("team")
    p.add_argument("repository", help="ORG/NAME, in the team's organization")
    p.add_argument("access", choices=(*ACCESS, "none"))
    p.set_defaults(func=signed_in("team grant", _team_grant))


def _team_add(client: ManagementClient, args: argparse.Namespace) -> int:
    client.add_team(args.org, args.team)
    print(f"created team {args.org}/{args.team}")
    return 0


def _team_members(client: ManagementClient, args: argparse.Namespace) -> int:
    for user in args.add:
        client.set_member(args.org, args.team, user, True)
    for user in args.remove:
        client.set_member(args.org, args.team, user, False)
    print(table(["member"], [[m] for m in client.members(args.org, args.team)]))
    return 0


def _team_grant(client: ManagementClient, args: argparse.Namespace) -> int:
    if args.repository.partition("/")[0] != args.org:
        raise ValueError(f"{args.repository} is not in organization {args.org}")
    client.grant(args.repository, args.team, args.access)
    print(f"team {args.org}/{args.team}: {args.access} on {args.repository}")
    return 0


# ---- repositories ---------------------------------------------------------------------


def _register_repos(subparsers: Any) -> None:
    actions = _parser(
        subparsers,
        "repo",
        "repositories: create, list, tags and signatures, visibility, remove, policies",
        "A repository lives in a user's or an organization's namespace (NAMESPACE/NAME). "
        "Public ones may be pulled by anyone, anonymous users included; private ones only "
        "by those with access. Pushing to a new name creates it too, private.",
        "examples:\n  qreg repo add engineering/barca\n"
        "  qreg repo visibility engineering/docs public\n  qreg repo list",
    )
    p = actions.add_parser("add", help="create a repository")
    p.add_argument("name", help="NAMESPACE/NAME")
    p.add_argument("--public", action="store_true", help="anyone may pull (default private)")
    p.set_defaults(func=signed_in("repo add", _repo_add))
    p = actions.add_parser("list", help="the repositories you may pull")
    p.set_defaults(func=signed_in("repo list", _repo_list))
    p = actions.add_parser("visibility", help="make a repository public or private")
    p.add_argument("name")
    p.add_argument("visibility", choices=("public", "private"))
    p.set_defaults(func=signed_in("repo visibility", _repo_visibility))
    p = actions.add_parser(
        "remove",
        help="delete a repository: its tags and images leave the index at once "
        "(qreg gc frees their disk space)",
    )
    p.add_argument("name")
    p.set_defaults(func=signed_in("repo remove", _repo_remove))
    policies.add_repo_actions(actions)
    signing.add_repo_actions(actions)


def _repo_add(client: ManagementClient, args: argparse.Namespace) -> int:
    if "/" not in args.name:
        raise ValueError("a repository is NAMESPACE/NAME")
    visibility = "public" if args.public else "private"
    client.add_repository(args.name, visibility)
    print(f"created {visibility} repository {args.name}")
    return 0


def _repo_list(client: ManagementClient, args: argparse.Namespace) -> int:
    rows = [
        [
            r["name"],
            r["visibility"],
            ", ".join(f"{t['team']}: {t['access']}" for t in r["team_access"]) or None,
        ]
        for r in client.repositories()
    ]
    print(table(["repository", "visibility", "team access"], rows))
    return 0


def _repo_visibility(client: ManagementClient, args: argparse.Namespace) -> int:
    client.set_visibility(args.name, args.visibility)
    print(f"{args.name} is now {args.visibility}")
    return 0


def _repo_remove(client: ManagementClient, args: argparse.Namespace) -> int:
    client.remove_repository(args.name)
    print(f"removed {args.name}")
    return 0


# ---- personal access tokens -------------------------------------------------------------


def _register_tokens(subparsers: Any) -> None:
    actions = _parser(
        subparsers,
        "token",
        "personal access tokens: for CI, in place of a password",
        "A personal access token works wherever the password does (docker login, skopeo "
        "--creds, qreg login) and can be revoked on its own. It is shown once, when created.",
        "examples:\n  qreg token create pipeline --days 30\n"
        "  qreg token list\n  qreg token revoke 3f2a9c1b7e40",
    )
    p = actions.add_parser("create", help="create a token (printed once)")
    p.add_argument("name", help="a label, such as the pipeline that uses it")
    p.add_argument("--days", type=int, default=90, help="lifetime in days; 0 never expires")
    p.add_argument("--user", help="whose token (default: you; admins may pick anyone)")
    p.set_defaults(func=signed_in("token create", _token_create))
    p = actions.add_parser("list", help="tokens, without their secrets")
    p.add_argument("--user", help="whose tokens (default: yours)")
    p.set_defaults(func=signed_in("token list", _token_list))
    p = actions.add_parser("revoke", help="revoke a token at once")
    p.add_argument("id")
    p.add_argument("--user", help="whose token (default: yours)")
    p.set_defaults(func=signed_in("token revoke", _token_revoke))


def _when(ms: int) -> str | None:
    if not ms:
        return None
    return datetime.datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M")


def _token_create(client: ManagementClient, args: argparse.Namespace) -> int:
    created = client.create_token(args.user or client.session.user, args.name, args.days)
    print(f"token {created['id']} ({created['name']}); copy it now, it is not shown again:")
    print(created["token"])
    return 0


def _token_list(client: ManagementClient, args: argparse.Namespace) -> int:
    rows = [
        [t["id"], t["name"], _when(t["created_ms"]), _when(t["expires_ms"]) or "never"]
        for t in client.tokens(args.user or client.session.user)
    ]
    print(table(["id", "name", "created", "expires"], rows))
    return 0


def _token_revoke(client: ManagementClient, args: argparse.Namespace) -> int:
    client.revoke_token(args.user or client.session.user, args.id)
    print(f"revoked token {args.id}")
    return 0
