"""The reference lists of ``nas fidelity`` and of a search's calibration: networks with a known
converged Set5 PSNR-Y at one scale (the shipped ``search_space/anchors/references/set5_x<s>.yaml``,
or a user's YAML list), read as
untrusted input: every problem of a list is collected and named by entry and field, and every
spec's size is checked before anything is built."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from search_space.anchors import get_anchor, list_anchors
from search_space.choices import SCALES
from search_space.errors import DocumentError, InputError
from search_space.limits import check_resources
from search_space.spec import ArchSpec
from search_space.validation import check_fields, raise_problems, rule, short
from search_space.yaml_io import read_yaml

__all__ = ["Reference", "ReferenceListError", "shipped_references", "SHIPPED_SCALES",
           "load_references", "spanning_subset", "MIN_FIT_REFERENCES",
           "DEFAULT_CALIBRATION_REFS"]

REFERENCE_DIR = Path(__file__).resolve().parents[1] / "search_space" / "anchors" / "references"
# the scales with a shipped reference list (main tables only: docs/proxy.md, section 3)
SHIPPED_SCALES = SCALES
# A fit on fewer references is not a measurement (three entries fitted leave-one-out gave
# errors of 0.2 dB on networks the shipped predictor had seen).
MIN_FIT_REFERENCES = 10
# References a search calibrates on by default: the smallest spanning subset of the 42 x4
# references whose leave-one-out pairwise accuracy, over all 42, stays within 0.02 of the full
# set's, as do all larger ones (19: 0.869 against 0.872; docs/proxy.md, section 7).
DEFAULT_CALIBRATION_REFS = 19


def shipped_references(scale: int) -> Path:
    """The shipped reference list of a scale (an error naming the scales that have one)."""
    if scale not in SHIPPED_SCALES:
        raise InputError(f"scale {scale}: no shipped reference list (shipped: "
                         f"{', '.join(f'x{s}' for s in SHIPPED_SCALES)}); pass your own with "
                         "--refs")
    return REFERENCE_DIR / f"set5_x{scale}.yaml"


@dataclass(frozen=True)
class Reference:
    name: str
    spec: ArchSpec
    psnr_ref: float
    source: str = ""
    # False: measured by `nas fidelity` and the shipped fit, but not proxy-trained by a search's
    # calibration (a reference that would cost more than the rest of the list together)
    calibrate: bool = True


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
    calibrate: bool = field(default=True, metadata=rule(kind=bool, optional=True))


def load_references(path: str | Path | None = None, scale: int = 4) -> list[Reference]:
    """The shipped reference set of ``scale``, or a user's YAML list of ``{name, spec,
    psnr_ref, source, calibrate}`` (``spec``: an anchor name or a spec YAML path relative to
    the file; ``psnr_ref`` a figure at ``scale``, to which every spec is set; ``calibrate:
    false`` keeps an entry out of a search's calibration).

    Every problem of the list is collected; one :class:`ReferenceListError` names them all.
    """
    path = Path(path) if path is not None else shipped_references(scale)
    data = read_yaml(path, "reference list")
    what = f"reference list {path}"
    if not isinstance(data, list) or not data:
        raise ReferenceListError(["expected a non-empty YAML list of {name, spec, psnr_ref, "
                                  "source} entries"], what)
    problems: list[str] = []
    refs = [_reference(entry, i, path.parent, scale, problems) for i, entry in enumerate(data)]
    names = [e.get("name") if isinstance(e, Mapping) else None for e in data]
    problems += [f"entry {i}: name {n!r} is used twice; expected unique names"
                 for i, n in enumerate(names) if isinstance(n, str) and n in names[:i]]
    if not problems and len(refs) < 3:
        problems.append(f"{len(refs)} references; rank statistics need at least 3")
    raise_problems(problems, ReferenceListError, what)
    return refs


def _reference(entry: Any, i: int, base: Path, scale: int,
               problems: list[str]) -> Reference | None:
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
        check_resources(spec.with_scale(scale), what=f"{where}.spec")  # before any build
    except InputError as e:
        problems.append(str(e))
        return None
    optional = {k: values[k] for k in ("source", "calibrate") if values.get(k) is not None}
    return Reference(values["name"], spec.with_scale(scale), values["psnr_ref"], **optional)


def spanning_subset(psnr_ref: Sequence[float], params: Sequence[int], n: int) -> list[int]:
    """Indices of ``n`` references that keep the set's span: evenly spaced in the order of
    size (so the smallest and the largest networks stay, and small networks keep their share),
    with the lowest and the highest reference PSNR swapped in where the spacing missed them.
    In the list's order; every index when ``n`` covers the list."""
    count = len(psnr_ref)
    if n >= count:
        return list(range(count))
    by_size = sorted(range(count), key=lambda i: params[i])
    picked = [by_size[round(k * (count - 1) / max(1, n - 1))] for k in range(n)]
    kept = {by_size[0], by_size[-1]}  # the ends of the size range, and what is swapped in
    for extreme in (min, max):
        i = extreme(range(count), key=lambda j: psnr_ref[j])
        if i not in picked:  # replace the pick nearest in size
            nearest = min((j for j in picked if j not in kept),
                          key=lambda j: abs(math.log(params[j] / params[i])))
            picked[picked.index(nearest)] = i
        kept.add(i)
    return sorted(picked)
