"""The `qallegro` command. Each topic registers its own subcommands from `<topic>/cli.py`.

A topic's `register(subparsers)` adds its parser(s) with `set_defaults(func=...)`; heavy imports happen inside
`func`, so `qallegro --help` stays fast. A user error (`qallegro.errors.QallegroError`) raised by any command is
printed here, once, as one line `qallegro <command>: <message>`, and the command exits with code 2
(`EXIT_USER_ERROR`, also argparse's code for a bad option); Ctrl-C exits with 130.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import threading

from qallegro import __version__
from qallegro.errors import EXIT_USER_ERROR, QallegroError

TOPICS = ("qallegro.data.cli", "qallegro.training.cli", "qallegro.deploy.cli", "qallegro.culi.cli",
          "qallegro.hpo.cli", "qallegro.hpo.artifacts_cli", "qallegro.campaign.cli", "qallegro.pipeline.cli")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qallegro", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"qallegro {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in TOPICS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name and name.startswith(err.name):  # topic not installed in this checkout
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    if threading.current_thread() is threading.main_thread():
        # Ctrl-C stops cleanly even when started with SIGINT ignored (a background job of a non-interactive shell)
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return int(args.func(args) or 0)
    except QallegroError as err:
        message = " ".join(str(err).split())  # one line, whatever the message holds
        print(f"qallegro {args.command}: {message}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted; completed work is saved and the same command resumes it", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` or a pager that quit: not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
