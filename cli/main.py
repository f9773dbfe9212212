"""`qreg`: run and manage a Quorum Registry cluster.

Each subcommand lives in its own module with a `register(subparsers)` function
that adds its parser and sets `func`.
"""

from __future__ import annotations

import argparse
import sys

from cli import (
    accounts,
    auth,
    backups,
    caches,
    configfile,
    gc,
    install,
    maintenance,
    membership,
    mirrors,
    policies,
    scan,
    serve,
    session,
    status,
    storage,
    tls,
    up,
    upgrade_check,
    verify,
    webhooks,
)

_EPILOG = """\
examples:
  qreg up                          start a local registry on https://127.0.0.1:5000
  qreg up --data /tmp/reg --port 6000
  qreg serve --config replica.toml run one replica from a config file
  qreg login https://127.0.0.1:5000 -u admin --ca ./data/ca.crt
  qreg user add orca --role read-write
  qreg repo list

See `qreg COMMAND --help` for each command.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qreg",
        description="Quorum Registry: a replicated OCI container registry.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in (
        up,
        serve,
        install,
        status,
        upgrade_check,
        verify,
        membership,
        backups,
        storage,
        maintenance,
        tls,
        session,
        accounts,
        auth,
        caches,
        gc,
        policies,
        scan,
        webhooks,
        mirrors,
    ):
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except configfile.MissingConfig as e:
        print(f"qreg {args.command}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
