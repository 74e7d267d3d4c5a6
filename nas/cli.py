"""The ``nas`` command line and its one failure policy (docs/validation.md).

Each sub-command is a class ``Command`` in ``nas/commands/<name>.py`` with a docstring (its help),
``add_arguments(parser)`` and ``run(args) -> int``; heavy imports happen inside ``run``.

- Bad input (any :class:`search_space.errors.InputError`): exit 2, one line on stderr (a document
  with several problems: a heading and one line per problem); warnings that libraries raised
  meanwhile are folded into that message.
- A crash: exit 1, one short line naming the log file that holds the traceback (a command sets
  ``args.log_dir`` once it has an output folder, and ``args.resume_hint``).
- Ctrl-C or SIGTERM: exit 130 (with the resume hint).
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import sys
import traceback
import warnings
from pathlib import Path

from nas.signals import sigterm_as_interrupt
from search_space.errors import InputError, one_line
from search_space.io import first_line, mask_secrets, shown
from trainers.environment import check_environment, log_dir

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
    "verify": "verify",
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
        p.set_defaults(_command=cmd, _parser=p)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if not getattr(args, "_command", None):
        if extra:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        parser.print_help()
        return 2
    if extra:  # named by the sub-command: "nas train: error: unrecognized arguments: ..."
        args._parser.error(f"unrecognized arguments: {' '.join(extra)}")
    sigterm_as_interrupt()
    name = f"nas {args.command}"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            check_environment()
            code = int(args._command().run(args) or 0)
        except InputError as e:
            print(mask_secrets(f"{name}: error: {e}{_folded(caught)}"), file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print(mask_secrets(f"{name}: interrupted{_hint(args)}"), file=sys.stderr)
            return 130
        except Exception as e:  # noqa: BLE001  (the policy: one line here, traceback in the log)
            log = _write_log(args, argv)
            print(mask_secrets(f"{name}: failed: {type(e).__name__}: {one_line(first_line(e))} "
                               f"({log}){_hint(args)}"), file=sys.stderr)
            return 1
    for text in dict.fromkeys(first_line(w.message) for w in caught):
        print(mask_secrets(f"{name}: warning: {one_line(text)}"), file=sys.stderr)
    return code


def _folded(caught: list[warnings.WarningMessage]) -> str:
    """Warnings raised while reading the bad input, as a suffix of the one-line message."""
    texts = list(dict.fromkeys(first_line(w.message) for w in caught))
    return f" (warning: {'; '.join(texts)})" if texts else ""


def _hint(args: argparse.Namespace) -> str:
    hint = getattr(args, "resume_hint", None)
    return f"; continue with `{hint}`" if hint else ""


def _write_log(args: argparse.Namespace, argv: list[str] | None) -> str:
    """Append the traceback to the command's log (its output folder, else ``ESRNAS_LOG_DIR``);
    where it lands, for the message. A traceback is never printed: the failure stays one line."""
    folder = getattr(args, "log_dir", None)
    if folder is None or not Path(folder).is_dir():
        folder = log_dir()
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = Path(folder) / f"nas-{args.command}.log"
    command = " ".join(sys.argv[1:] if argv is None else argv)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as f:
            f.write(f"--- {stamp} nas {mask_secrets(command)}\n")
            f.write(mask_secrets(traceback.format_exc()))
    except OSError as e:
        return f"traceback not saved: cannot write {shown(path)}: {e.strerror or type(e).__name__}"
    return f"traceback: {shown(path)}"


if __name__ == "__main__":
    sys.exit(main())
