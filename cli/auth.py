"""`qreg auth`: how the cluster signs people in (managed accounts, a directory over
LDAP, or nobody), the directory's settings, its test and its sync, and trusted client
certificate CAs."""

from __future__ import annotations

import argparse
import datetime
from typing import Any

from cli.client import ManagementClient, signed_in
from cli.output import table
from cli.session import read_password

_DESCRIPTION = """\
Modes (a cluster setting: every replica applies a change at once, no restart):
  managed  accounts and passwords kept by the registry (the default)
  ldap     passwords checked by a directory (LDAP, Active Directory); accounts are
           made on first login and kept in step by the sync (deactivated when gone
           from the directory); teams can follow directory groups; personal access
           tokens keep working for CI
  none     no sign-in at all: anyone who reaches the registry may push, pull and
           delete (trials only; logs and the web UI say so)"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "auth",
        help="how people sign in: managed accounts, LDAP / Active Directory, or none",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="auth_command", required=True, metavar="ACTION")
    s = sub.add_parser("show", help="the mode, the directory's settings and trusted client CAs")
    s.set_defaults(func=signed_in("auth show", _show))
    m = sub.add_parser(
        "mode",
        help="set the mode (managed, ldap, none)",
        epilog="examples:\n  qreg auth mode ldap\n  qreg auth mode managed",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    m.add_argument("mode", choices=("managed", "ldap", "none"))
    m.add_argument(
        "--force",
        action="store_true",
        help="switch to ldap even though your own account is a managed one that will not "
        "sign in any more (keep_managed off)",
    )
    m.set_defaults(func=signed_in("auth mode", _mode))
    _register_ldap(sub)
    _register_client_cas(sub)


def _register_client_cas(sub: Any) -> None:
    p = sub.add_parser(
        "client-ca",
        help="trust client certificates from a CA: their holders sign in without a password",
        description="A client presenting, over TLS, a certificate from a trusted client CA "
        "is signed in as the user the certificate names (its CN, or with `identity` its "
        "e-mail or DNS name), for docker/skopeo (--cert-dir), the token service and the "
        "management API. The user must have an active account. Replicas ask for client "
        "certificates within seconds of the first CA being added.",
        epilog="examples:\n"
        "  qreg auth client-ca add corp ./corp-ca.pem\n"
        "  qreg tls issue --ca ./data --for user --name alice --out ./alice-certs   # a trial\n"
        "  qreg auth client-ca revoke 5f3a9c...\n"
        "  qreg auth client-ca crl ./corp.crl.pem\n"
        "  qreg auth client-ca remove corp",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cas = p.add_subparsers(dest="ca_command", required=True, metavar="ACTION")
    a = cas.add_parser("add", help="trust a CA (PEM file)")
    a.add_argument("name")
    a.add_argument("file")
    a.set_defaults(func=signed_in("auth client-ca add", _ca_add))
    cas.add_parser("list", help="the trusted client CAs").set_defaults(
        func=signed_in("auth client-ca list", _ca_list)
    )
    r = cas.add_parser("remove", help="stop trusting a CA")
    r.add_argument("name")
    r.set_defaults(func=signed_in("auth client-ca remove", _ca_remove))
    v = cas.add_parser("revoke", help="refuse certificates by serial number (hex)")
    v.add_argument("serial", nargs="+")
    v.set_defaults(func=signed_in("auth client-ca revoke", _ca_revoke))
    c = cas.add_parser("crl", help="refuse what a CA's revocation list (PEM) lists")
    c.add_argument("file", help="the CRL, PEM; '' removes it")
    c.set_defaults(func=signed_in("auth client-ca crl", _ca_crl))
    i = cas.add_parser("identity", help="what in a certificate names the user")
    i.add_argument("identity", choices=("cn", "email", "dns"))
    i.set_defaults(func=signed_in("auth client-ca identity", _ca_identity))


def _register_ldap(sub: Any) -> None:
    p = sub.add_parser("ldap", help="the directory: set, test, sync, teams that follow groups")
    ldap = p.add_subparsers(dest="ldap_command", required=True, metavar="ACTION")
    s = ldap.add_parser(
        "set",
        help="change the directory's settings (options given replace, others stay)",
        description="The service account's password is read from --bind-password-file or "
        "asked for with --bind-password; it is kept sealed with the cluster's secret.",
        epilog="examples:\n"
        "  qreg auth ldap set --url ldaps://ldap.example.org --ca-file ldap-ca.pem \\\n"
        "      --bind-dn cn=registry,ou=services,dc=example,dc=org --bind-password \\\n"
        "      --user-base-dn ou=people,dc=example,dc=org \\\n"
        "      --user-filter '(objectClass=inetOrgPerson)' --username-attribute uid \\\n"
        "      --admin-group-dn cn=registry-admins,ou=groups,dc=example,dc=org \\\n"
        "      --keep-managed --sync-interval 3600\n"
        "  # Active Directory\n"
        "  qreg auth ldap set --url ldaps://dc1.corp.example:636 --username-attribute "
        "sAMAccountName \\\n      --user-filter '(&(objectClass=user)(!(userAccountControl:"
        "1.2.840.113556.1.4.803:=2)))'",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    s.add_argument("--url", help="ldaps://HOST[:636], or ldap://HOST[:389] with --start-tls")
    s.add_argument("--ca-file", help="PEM of the CA that signed the directory's certificate")
    s.add_argument("--bind-dn", help="the service account that searches the directory")
    s.add_argument("--bind-password", action="store_true", help="ask for its password")
    s.add_argument("--bind-password-file", help="read its password from this file")
    s.add_argument("--user-base-dn", help="where users are searched (the whole subtree)")
    s.add_argument("--user-filter", help="which entries are users (default (objectClass=person))")
    s.add_argument("--username-attribute", help="the attribute of the user name (default uid)")
    s.add_argument("--admin-group-dn", help="its members are administrators ('' : roles kept)")
    s.add_argument("--member-attribute", help="groups' member attribute (default member)")
    s.add_argument("--sync-interval", type=int, metavar="SECONDS", help="0: only when asked")
    for flag, text in (
        ("start-tls", "StartTLS on an ldap:// URL"),
        ("allow-plain", "allow ldap:// without TLS (passwords in the clear)"),
        ("keep-managed", "managed accounts with a password here still sign in with it"),
    ):
        s.add_argument(f"--{flag}", action=argparse.BooleanOptionalAction, help=text)
    s.set_defaults(func=signed_in("auth ldap set", _ldap_set))
    t = ldap.add_parser("test", help="bind as the service account, count users, try a login")
    t.add_argument("--user", help="also check this user's password (asked for)")
    t.add_argument("--password-stdin", action="store_true")
    t.set_defaults(func=signed_in("auth ldap test", _ldap_test))
    y = ldap.add_parser("sync", help="sync accounts and teams with the directory now")
    y.set_defaults(func=signed_in("auth ldap sync", _ldap_sync))
    g = ldap.add_parser(
        "team",
        help="make a team follow a directory group (its members set by every sync)",
        epilog="examples:\n"
        "  qreg auth ldap team engineering devs cn=devs,ou=groups,dc=example,dc=org\n"
        "  qreg auth ldap team engineering devs ''   # managed here again",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    g.add_argument("org")
    g.add_argument("team")
    g.add_argument("group_dn", help="the group's DN; '' to stop following it")
    g.set_defaults(func=signed_in("auth ldap team", _ldap_team))


def _show(client: ManagementClient, args: argparse.Namespace) -> int:
    found = client.call("GET", "/auth/settings")
    print(f"mode: {found['mode']}")
    ldap = found["ldap"]
    if ldap["url"]:
        rows = [[k, v] for k, v in ldap.items() if k != "ca_pem" and v not in ("", None)]
        rows.append(["ca_pem", "set" if ldap["ca_pem"] else "system trust store"])
        print(table(["directory", "value"], rows))
    else:
        print("directory: none configured")
    cas = found["client_cas"]
    if cas:
        print(table(["client CA", "added"], [[c["name"], _when(c["added_ms"])] for c in cas]))
    return 0


def _mode(client: ManagementClient, args: argparse.Namespace) -> int:
    found = client.call("PUT", "/auth/mode", {"mode": args.mode, "force": args.force})
    print(f"mode: {found['mode']} (on every replica now)")
    if found["mode"] == "none":
        print("warning: anyone who reaches the registry may now push, pull and delete")
    return 0


def _ldap_set(client: ManagementClient, args: argparse.Namespace) -> int:
    body: dict[str, Any] = {}
    for option in (
        "url",
        "bind_dn",
        "user_base_dn",
        "user_filter",
        "username_attribute",
        "admin_group_dn",
        "member_attribute",
        "start_tls",
        "allow_plain",
        "keep_managed",
    ):
        if getattr(args, option) is not None:
            body[option] = getattr(args, option)
    if args.sync_interval is not None:
        body["sync_interval_s"] = args.sync_interval
    if args.ca_file:
        with open(args.ca_file) as f:
            body["ca_pem"] = f.read()
    if args.bind_password_file:
        with open(args.bind_password_file) as f:
            body["bind_password"] = f.read().strip()
    elif args.bind_password:
        body["bind_password"] = read_password(False, "Service account password: ")
    if not body:
        raise ValueError("nothing to change: give at least one option (see --help)")
    client.call("PUT", "/auth/ldap", body)
    print("directory settings saved; check them with `qreg auth ldap test`")
    return 0


def _ldap_test(client: ManagementClient, args: argparse.Namespace) -> int:
    body: dict[str, Any] = {}
    if args.user:
        body = {"username": args.user, "password": read_password(args.password_stdin)}
    found = client.call("POST", "/auth/ldap/test", body)
    if not found["ok"]:
        print(f"{found['url']}: {found['error']} ({found['seconds']} s)")
        return 1
    print(f"{found['url']}: service account bound, {found['users']} users ({found['seconds']} s)")
    if "login" in found:
        print(f"{args.user}: {'password accepted' if found['login'] else 'refused'}")
        return 0 if found["login"] else 1
    return 0


def _ldap_sync(client: ManagementClient, args: argparse.Namespace) -> int:
    found = client.call("POST", "/auth/ldap/sync")
    print(
        f"{found['directory_users']} directory users in {found['seconds']} s: "
        f"{found['created']['count']} created, {found['deactivated']['count']} deactivated, "
        f"{found['reactivated']['count']} reactivated, {found['roles_changed']['count']} "
        f"roles changed, {found['teams']} teams in step"
    )
    for what in ("created", "deactivated", "reactivated"):
        if found[what]["names"]:
            print(f"  {what}: {', '.join(found[what]['names'])}")
    return 0


def _ldap_team(client: ManagementClient, args: argparse.Namespace) -> int:
    client.call(
        "PUT",
        f"/accounts/{args.org}/teams/{args.team}/directory-group",
        {"group_dn": args.group_dn},
    )
    if args.group_dn:
        print(f"{args.org}/{args.team} follows {args.group_dn} (members set at the next sync)")
    else:
        print(f"{args.org}/{args.team} is managed here")
    return 0


def _when(ms: int) -> str:
    return datetime.datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M")


def _ca_add(client: ManagementClient, args: argparse.Namespace) -> int:
    with open(args.file) as f:
        found = client.call("POST", "/auth/client-cas", {"name": args.name, "pem": f.read()})
    added = next(ca for ca in found["client_cas"] if ca["name"] == args.name)
    print(f"trusted {args.name}: {added['subject']} (sha256 {added['fingerprint'][:16]}…)")
    return 0


def _ca_list(client: ManagementClient, args: argparse.Namespace) -> int:
    found = client.call("GET", "/auth/settings")
    rows = [
        [ca["name"], ca["subject"], _when(ca["expires_ms"]), ca["fingerprint"][:16]]
        for ca in found["client_cas"]
    ]
    print(table(["name", "subject", "expires", "sha256"], rows) if rows else "no client CAs")
    print(
        f"identity: {found['certificate_identity']}; {len(found['revoked_serials'])} serials "
        f"revoked; CRL {'set' if found['crl_set'] else 'none'}"
    )
    return 0


def _ca_remove(client: ManagementClient, args: argparse.Namespace) -> int:
    client.call("DELETE", f"/auth/client-cas/{args.name}")
    print(f"{args.name} is no longer trusted")
    return 0


def _ca_revoke(client: ManagementClient, args: argparse.Namespace) -> int:
    found = client.call("PUT", "/auth/client-certificates", {"revoke": args.serial})
    print(f"revoked; {len(found['revoked_serials'])} serials revoked in all")
    return 0


def _ca_crl(client: ManagementClient, args: argparse.Namespace) -> int:
    pem = ""
    if args.file:
        with open(args.file) as f:
            pem = f.read()
    client.call("PUT", "/auth/client-certificates", {"crl_pem": pem})
    print("CRL set" if pem else "CRL removed")
    return 0


def _ca_identity(client: ManagementClient, args: argparse.Namespace) -> int:
    client.call("PUT", "/auth/client-certificates", {"identity": args.identity})
    print(f"certificates name users by their {args.identity}")
    return 0
