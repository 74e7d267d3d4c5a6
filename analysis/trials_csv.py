"""Reading ``trials.csv`` as untrusted input: a run folder is often someone else's.

The writer (:meth:`analysis.rundir.TrialsTable.write`) ends every row with a newline and quotes
as the ``csv`` module does, so a file that does not end with a newline, a row with another
number of cells than the header, or a cell of the wrong type is a torn or edited table. It is
refused with its line number instead of being read into a front with a cut-off PSNR. Cells are
checked against the catalogue's types (:mod:`analysis.metrics`); a trial id must be a plain
folder name (it becomes ``trials/<trial_id>/``).
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Iterator
from pathlib import Path

from analysis import metrics as catalogue
from analysis.metrics import COL
from search_space.errors import InputError
from search_space.io import read_text_bounded, shown
from search_space.validation import short

__all__ = ["read_records", "MAX_TRIALS_CSV_BYTES", "TRIAL_ID"]

MAX_TRIALS_CSV_BYTES = 512 << 20
MAX_CELL_CHARS = 1 << 20
TRIAL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_ARCH_ID = re.compile(r"[0-9a-f]{12}")
_BOOLS = ("true", "false", "1", "0")


def read_records(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """The header and the rows (text cells, as written) of a ``trials.csv``.

    Raises:
        InputError: one line naming the file, the line and what is wrong with it.
    """
    text = read_text_bounded(path, "trials table", MAX_TRIALS_CSV_BYTES)
    if not text.strip():
        raise InputError(f"{shown(path)}: has no trials")
    if not text.endswith("\n"):
        last = text.count("\n") + 1
        raise InputError(f"{shown(path)}: line {last} is cut short (no end of line: a torn or "
                         "truncated file)")
    header, *rows = _rows(path, text)
    header_cells = header[1]
    duplicated = sorted({c for c in header_cells if header_cells.count(c) > 1})
    if duplicated:
        raise InputError(f"{shown(path)}: line 1 repeats column(s) {', '.join(duplicated)}")
    records = []
    for line, cells in rows:
        if len(cells) != len(header_cells):
            raise InputError(f"{shown(path)}: line {line} has {len(cells)} cells, the header "
                             f"{len(header_cells)} (a torn or edited row)")
        record = dict(zip(header_cells, cells, strict=True))
        problem = next(filter(None, (_cell_problem(k, v) for k, v in record.items())), None)
        if problem:
            raise InputError(f"{shown(path)}: line {line}: {problem}")
        records.append(record)
    return header_cells, records


def _rows(path: Path, text: str) -> Iterator[tuple[int, list[str]]]:
    """``(first line number, cells)`` of every record, blank lines skipped."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    line = 1
    try:
        for cells in reader:
            if cells:
                yield line, cells
            line = reader.line_num + 1
    except csv.Error as e:
        raise InputError(f"{shown(path)}: line {line} is not valid CSV ({e})") from None


def _cell_problem(column: str, text: str) -> str | None:
    if len(text) > MAX_CELL_CHARS:
        return f"{column}: a cell of {len(text):,} characters; at most {MAX_CELL_CHARS:,}"
    if column == COL.trial_id:
        return None if TRIAL_ID.fullmatch(text) else \
            f"trial_id: expected a folder name of letters, digits, _ and -, got {short(text)}"
    if text == "":
        return None
    if column == COL.arch_id:
        return None if _ARCH_ID.fullmatch(text) else \
            f"arch_id: expected 12 hex digits, got {short(text)}"
    f = catalogue.field(column)
    dtype = f.dtype if f is not None else None
    if dtype in ("int", "float"):
        try:
            ok = math.isfinite(float(text))
        except ValueError:
            ok = False
        return None if ok else f"{column}: expected a finite number, got {short(text)}"
    if dtype == "bool" and text.strip().lower() not in _BOOLS:
        return f"{column}: expected True or False, got {short(text)}"
    if dtype == "json":
        try:
            json.loads(text)
        except (ValueError, RecursionError):
            return f"{column}: expected JSON, got {short(text)}"
    return None
