"""`qreg tls`: a cluster CA and replica certificates made ahead of time, and a
replica's certificate renewed in place.

`qreg install`, `qreg join` and `qreg up` make certificates themselves; `ca` and
`issue` are for layouts written by hand, such as cluster-examples/, where every
replica's files are prepared before the first start. `renew` gives a replica a new
certificate for the same names and key; the running replica takes it up within
seconds, without a restart (replica/tls_reload.py).
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

from cli import configfile
from cli.output import fail
from replica import pki


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "tls",
        help="make a cluster CA and replica certificates ahead of time",
        description="Make the cluster CA and replica certificates for a layout written by hand "
        "(qreg install, join and up make their own). A replica's directory gets "
        "ca.crt, ca.key, replica.crt and replica.key: point its [tls] ca, ca_key, "
        "cert and key at them, or put them in DATA/tls/.",
        epilog="example:\n  qreg tls ca --out ./tls\n"
        "  qreg tls issue --ca ./tls --name replica-0 --san replica-0 "
        "--san registry.example.com --out ./tls/replica-0\n"
        "  qreg tls issue --ca ./tls --for cache --name cache-eu "
        "--san eu.registry.example.com --out ./tls/cache-eu\n"
        "  qreg tls issue --ca ./tls --for user --name alice --out ~/.config/containers/"
        "certs.d/registry.example.com",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    ca = verbs.add_parser("ca", help="create a new cluster CA (ca.crt, ca.key)")
    ca.add_argument("--out", required=True, help="directory to write ca.crt and ca.key to")
    ca.add_argument("--name", default="Quorum Registry", help="the CA's common name prefix")
    ca.set_defaults(func=make_ca)
    issue = verbs.add_parser("issue", help="issue one replica's certificate from the CA")
    issue.add_argument("--ca", required=True, help="directory holding ca.crt and ca.key")
    issue.add_argument("--name", required=True, help="the replica id (the certificate's name)")
    issue.add_argument(
        "--san",
        action="append",
        default=[],
        metavar="NAME",
        help="a host name or address clients and peers use (repeatable)",
    )
    issue.add_argument("--out", required=True, help="the replica's TLS directory")
    issue.add_argument(
        "--for",
        dest="role",
        choices=("replica", "cache", "user"),
        default="replica",
        help="a cache gets cache.crt and the CA certificate, never the CA key; a user gets "
        "NAME.cert and NAME.key, a client certificate that signs NAME in once the CA is "
        "trusted (qreg auth client-ca add) (default replica)",
    )
    issue.add_argument(
        "--email", action="append", default=[], help="with --for user: an e-mail SAN"
    )
    issue.add_argument(
        "--days", type=int, default=365, help="with --for user: validity (default 365)"
    )
    issue.set_defaults(func=issue_cert)
    renew = verbs.add_parser(
        "renew",
        help="renew a replica's certificate in place; the running replica takes it up",
        description="Issue a new certificate for the replica whose config is given: the "
        "same names and key, from the cluster CA, valid from now. The file is replaced "
        "atomically; the running replica loads it within 5 seconds for new HTTPS and "
        "gRPC connections (open ones keep theirs), so nothing restarts and no request "
        "fails. Replicas warn from 30 days before expiry (log and the metric "
        "qreg_tls_cert_expiry_timestamp_seconds). Run it on each replica's host.",
        epilog="example:\n  qreg tls renew --config /var/lib/qreg/replica.toml",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    renew.add_argument("--config", required=True, help="the replica's config file")
    renew.add_argument(
        "--days",
        type=int,
        default=825,
        help="validity in days (default 825, the longest browsers and Go clients accept)",
    )
    renew.set_defaults(func=renew_cert)


def make_ca(args: argparse.Namespace) -> int:
    if os.path.exists(os.path.join(args.out, "ca.key")):
        return fail("tls ca", f"{args.out}/ca.key exists: a CA is made once")
    cert, key = pki.create_ca(args.name)
    os.makedirs(args.out, exist_ok=True)
    pki.write_private(os.path.join(args.out, "ca.key"), key)
    pki.write_private(os.path.join(args.out, "ca.crt"), cert)
    os.chmod(os.path.join(args.out, "ca.crt"), 0o644)
    print(f"wrote {args.out}/ca.crt and ca.key (fingerprint {pki.fingerprint(cert)})")
    return 0


def renew_cert(args: argparse.Namespace) -> int:
    config = configfile.read(args.config)
    if not config:
        return fail("tls renew", f"no replica config at {args.config}")
    tls = config.get("tls", {})
    data = config.get("replica", {}).get("data_dir", os.path.dirname(args.config))
    paths = {
        name: tls.get(name) or os.path.join(data, "tls", default)
        for name, default in (
            ("ca", "ca.crt"), ("ca_key", "ca.key"), ("cert", "replica.crt"), ("key", "replica.key")
        )
    }  # fmt: skip
    if not 1 <= args.days <= 825:
        return fail("tls renew", "--days is 1 to 825")
    try:
        files = {name: _read(path) for name, path in paths.items()}
    except OSError as e:
        return fail("tls renew", f"cannot read {e.filename}: {e.strerror}")
    old = files["cert"]
    cert, _ = pki.issue(
        files["ca"],
        files["ca_key"],
        pki.common_name(old),
        sorted(pki.certificate_names(old)),
        key_pem=files["key"],
        days=args.days,
    )
    pki.write_private(paths["cert"], cert)
    os.chmod(paths["cert"], 0o644)
    before = time.strftime("%Y-%m-%d", time.gmtime(pki.expires_at(old)))
    after = time.strftime("%Y-%m-%d", time.gmtime(pki.expires_at(cert)))
    print(
        f"renewed {paths['cert']} ({', '.join(sorted(pki.certificate_names(cert)))}): "
        f"valid until {after} (was {before}); the running replica takes it up within 5 s"
    )
    return 0


def issue_cert(args: argparse.Namespace) -> int:
    try:
        with (
            open(os.path.join(args.ca, "ca.crt"), "rb") as c,
            open(os.path.join(args.ca, "ca.key"), "rb") as k,
        ):
            ca_cert, ca_key = c.read(), k.read()
    except OSError as e:
        return fail("tls issue", f"cannot read the CA: {e}")
    names = args.san or [args.name]
    if args.role == "user":  # the files skopeo's and docker's --cert-dir pick up
        cert, key = pki.issue_client(ca_cert, ca_key, args.name, args.email, args.days)
        os.makedirs(args.out, exist_ok=True)
        pki.write_private(os.path.join(args.out, f"{args.name}.key"), key)
        pki.write_private(os.path.join(args.out, f"{args.name}.cert"), cert)
        print(
            f"wrote {args.out}/{args.name}.cert and .key: a client certificate for "
            f"{args.name}, serial {pki.serial(cert)}"
        )
        return 0
    if args.role == "cache":  # a cache checks grants with the CA certificate; no key
        cert, key = pki.issue(ca_cert, ca_key, args.name, names)
        pki.write_private(os.path.join(args.out, "cache.key"), key)
        for name, data in (("cache.crt", cert), ("ca.crt", ca_cert)):
            pki.write_private(os.path.join(args.out, name), data)
            os.chmod(os.path.join(args.out, name), 0o644)
        print(f"wrote {args.out}/cache.crt for {', '.join(names)}")
        return 0
    files = pki.TlsFiles(
        os.path.join(args.out, "ca.crt"),
        os.path.join(args.out, "ca.key"),
        os.path.join(args.out, "replica.crt"),
        os.path.join(args.out, "replica.key"),
    )
    pki.set_up_replica(files, ca_cert, ca_key, args.name, names)
    print(f"wrote {args.out}/replica.crt for {', '.join(names)}")
    return 0


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()
