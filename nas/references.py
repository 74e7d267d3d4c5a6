"""The reference lists of ``nas fidelity``: networks with a known converged Set5 x4 PSNR-Y
(the shipped ``search_space/anchors/references/set5_x4.yaml``, or a user's YAML list), read as
untrusted input: every problem of a list is collected and named by entry and field, and every
spec's size is checked before anything is built."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from search_space.anchors import get_anchor, list_anchors
from search_space.errors import DocumentError, InputError
from search_space.limits import check_resources
from search_space.spec import ArchSpec
from search_space.validation import check_fields, raise_problems, rule, short
from search_space.yaml_io import read_yaml

__all__ = ["Reference", "ReferenceListError", "SHIPPED_REFERENCES", "SCALE", "load_references"]

SHIPPED_REFERENCES = (Path(__file__).resolve().parents[1] / "search_space" / "anchors"
                      / "references" / "set5_x4.yaml")
SCALE = 4  # the reference PSNRs are x4 figures


@dataclass(frozen=True)
class Reference:
    name: str
    spec: ArchSpec
    psnr_ref: float
    source: str = ""


class ReferenceListError(DocumentError):
    """An invalid reference list; one line per problem, each naming its entry and field."""

    kind = "reference list"


@dataclass(frozen=True)
class _Entry:
    """The rules of one entry of a reference list (checked, never constructed)."""

    name: str = field(metadata=rule(kind=str))
    spec: str = field(metadata=rule(kind=str, expected="an anchor name or a spec YAML path"))
    psnr_ref: float = field(metadata=rule(kind=float, low=0, high=100,
                                          expected="a number of dB (0 to 100)"))
    source: str = field(default="", metadata=rule(kind=str, optional=True))


def load_references(path: str | Path | None = None) -> list[Reference]:
    """The shipped reference set, or a user's YAML list of ``{name, spec, psnr_ref, source}``
    (``spec``: an anchor name or a spec YAML path relative to the file).

    Every problem of the list is collected; one :class:`ReferenceListError` names them all.
    """
    path = Path(path) if path is not None else SHIPPED_REFERENCES
    data = read_yaml(path, "reference list")
    what = f"reference list {path}"
    if not isinstance(data, list) or not data:
        raise ReferenceListError(["expected a non-empty YAML list of {name, spec, psnr_ref, "
                                  "source} entries"], what)
    problems: list[str] = []
    refs = [_reference(entry, i, path.parent, problems) for i, entry in enumerate(data)]
    names = [e.get("name") if isinstance(e, Mapping) else None for e in data]
    problems += [f"entry {i}: name {n!r} is used twice; expected unique names"
                 for i, n in enumerate(names) if isinstance(n, str) and n in names[:i]]
    if not problems and len(refs) < 3:
        problems.append(f"{len(refs)} references; rank statistics need at least 3")
    raise_problems(problems, ReferenceListError, what)
    return refs


def _reference(entry: Any, i: int, base: Path, problems: list[str]) -> Reference | None:
    """Entry ``i`` as a Reference, or None with its problems appended."""
    if not isinstance(entry, Mapping):
        problems.append(f"entry {i}: expected a mapping with name, spec, psnr_ref, source, got "
                        f"{short(entry)}")
        return None
    where = f"entry {i}" + (f" ({entry['name']})" if isinstance(entry.get("name"), str) else "")
    found: list[str] = []
    values = check_fields(_Entry, entry, where, found)
    found += [f"{where}.{k}: required" for k in ("name", "spec", "psnr_ref") if k not in entry]
    target = values.get("spec")
    anchor = target in list_anchors()
    file = None if found or anchor else base / target  # an absolute target stays itself
    if file is not None and not file.is_file():
        found.append(f"{where}.spec: {target!r} is neither an anchor nor a spec file "
                     f"({file} not found)")
    problems += found
    if found:
        return None
    spec = get_anchor(target).spec if anchor else ArchSpec.from_file(file)
    try:
        check_resources(spec.with_scale(SCALE), what=f"{where}.spec")  # before any build
    except InputError as e:
        problems.append(str(e))
        return None
    return Reference(values["name"], spec.with_scale(SCALE), values["psnr_ref"],
                     values.get("source") or "")
