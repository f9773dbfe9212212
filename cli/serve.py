"""`qreg serve --config FILE`: run one replica in the foreground."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from replica.config import ConfigError, load


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "serve",
        help="run one replica from a config file",
        description="Run one replica in the foreground: the OCI API on [http] host:port and "
        "its Raft member on [raft] address. Stop it with SIGINT or SIGTERM; "
        "data stays consistent. Any key can be overridden by an environment "
        "variable QREG_<SECTION>_<KEY>, e.g. QREG_HTTP_PORT=5001.",
    )
    p.add_argument("--config", required=True, metavar="FILE", help="TOML config file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        config = load(args.config)
    except ConfigError as e:
        print(f"qreg serve: {e}", file=sys.stderr)
        return 2
    from replica.data_lock import DataDirInUse
    from replica.server import serve  # server imports are heavy; --help stays fast

    try:
        serve(config)
    except (ConfigError, DataDirInUse) as e:  # found at start: one line, not a traceback
        print(f"qreg serve: {e}", file=sys.stderr)
        return 2
    return 0
