"""The ``vitalgate`` command line.

Each area of the product registers its own subcommands: a module listed in ``_COMMAND_MODULES``
exposes ``register(subparsers)``, which adds parsers whose ``func`` default takes the parsed
arguments and returns an exit code.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import sys
from collections.abc import Callable, Sequence

from vitalgate import __version__
from vitalgate.errors import VitalgateError

__all__ = ["build_parser", "main"]

_COMMAND_MODULES = (
    "vitalgate.gateway.cli",
    "vitalgate.cloud_sync.cli",
    "vitalgate.firmware_sim.cli",
    "vitalgate.views.cli",
    "vitalgate.query",
    "vitalgate.demo",
)

log = logging.getLogger("vitalgate")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vitalgate",
        description="Home-monitoring gateway for BLE health devices.",
    )
    parser.add_argument("--version", action="version", version=f"vitalgate {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        if importlib.util.find_spec(name) is None:
            continue
        module = importlib.import_module(name)
        register: Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None] = (
            module.register
        )
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(int(args.verbose), 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    func: Callable[[argparse.Namespace], int] | None = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        return func(args)
    except VitalgateError as exc:
        print(f"vitalgate: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
