"""The ``nas`` command line.

Each sub-command is a class ``Command`` in ``nas/commands/<name>.py`` with a docstring (its help),
``add_arguments(parser)`` and ``run(args) -> int``; heavy imports happen inside ``run``.
Bad input (any :class:`search_space.errors.InputError`) prints one plain message and exits 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from search_space.errors import InputError

# name -> module under nas.commands
_COMMANDS = {
    "anchors": "anchors",
    "show": "show",
    "profile": "profile",
    "eval": "evaluate",
    "train": "train",
    "launch": "launch",
    "pareto": "pareto",
    "export": "export",
    "fidelity": "fidelity",
    "data": "data",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse prints usage too)
        self.exit(2, f"{self.prog}: error: {message}\n")


def _load(module: str):
    return importlib.import_module(f"nas.commands.{module}").Command


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="nas", description="esrnas: search efficient super-resolution networks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, module in _COMMANDS.items():
        try:
            cmd = _load(module)
        except ModuleNotFoundError as e:
            if e.name != f"nas.commands.{module}":
                raise
            continue  # command not built yet
        doc = (cmd.__doc__ or "").strip()
        p = sub.add_parser(name, help=doc.splitlines()[0] if doc else None, description=doc,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        cmd.add_arguments(p)
        p.set_defaults(_command=cmd)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_command", None):
        parser.print_help()
        return 2
    try:
        return int(args._command().run(args) or 0)
    except InputError as e:
        print(f"nas {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"nas {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
