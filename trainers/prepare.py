"""``nas data prepare``: a folder of HR images becomes a prepared training set.

Layout of ``OUT`` (BasicSR's, so that its ``PairedImageDataset`` reads it unchanged)::

    HR_sub/<name>_s001.png ...           sub-images cut as BasicSR's extract_subimages.py does
    LR_bicubic/X4_sub/<name>_s001.png    trainers.degrade.bicubic_downsample of each HR sub-image
    store/HR.npy, store/X4.npy           every sub-image packed, (N, crop, crop, 3) uint8 and
                                         (N, crop / s, crop / s, 3): the loader memory-maps these
    store/index.json                     the store's shape and which slots hold an image
    manifest.json                        settings, every source and output file with its sha256

Resuming: ``.prepare/plan.json`` fixes, from the image headers alone, which sub-images each source
image gives and their slots in the store, before any pixel is written. A source image is done
when its marker ``.prepare/done/<file>.json`` exists; the marker is written (atomically) only
after all the image's PNGs and store slots are written and flushed. A re-run skips done images
and redoes the others; a PNG that already exists is complete (every file is written atomically)
and is not written again. ``manifest.json`` is built from the markers at the end, sorted, so an
interrupted and resumed run gives the same manifest as an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import io
import json
import multiprocessing
import os
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from search_space.errors import DocumentError, InputError
from search_space.io import first_line, make_output_dir, read_json_bounded, shown, write_atomic
from search_space.validation import check_instance, raise_problems, rule, short
from trainers.degrade import bicubic_downsample
from trainers.images import list_images, load_image, open_image_header

__all__ = ["Settings", "PrepareResult", "prepare", "sub_positions", "hr_dir", "lr_dir",
           "FORMAT", "MANIFEST"]

FORMAT = "esrnas-prepared"
VERSION = 1
MANIFEST = "manifest.json"
STORE = "store"
_STATE = ".prepare"
_PNG_LEVEL = 3  # zlib level of the PNGs (BasicSR's extract_subimages uses 3 as well)
# Bounds of a plan, checked on the headers before anything is allocated (docs/validation.md):
# DIV2K at the BasicSR settings (480/240) gives 40 sub-images an image, LSDIR about 1M in all.
MAX_SUBS_PER_IMAGE = 100_000
MAX_SUBS = 10_000_000


def _scales(scales: Any) -> str | None:
    if not isinstance(scales, tuple) or not scales or not all(
            isinstance(s, int) and not isinstance(s, bool) and 2 <= s <= 16 for s in scales):
        return f"expected factors from 2 to 16, got {short(scales)}"
    return f"repeated factor in {list(scales)}" if len(set(scales)) != len(scales) else None


class SettingsError(DocumentError):
    """Invalid preparation settings (named by their command-line flags)."""

    kind = "prepare settings"


_FLAGS = {"scales": "--scale", "crop": "--crop", "step": "--step"}


@dataclass(frozen=True)
class Settings:
    """How sub-images are cut and which LR versions are made (checked on construction).

    Args:
        scales: LR scale factors; each must divide ``crop``.
        crop: Side of a square HR sub-image (BasicSR: 480).
        step: Stride between sub-images (BasicSR: 240); the last row/column is flush with the
            image's bottom/right edge.
    """

    scales: tuple[int, ...] = field(default=(2, 3, 4), metadata=rule(
        convert=lambda v: tuple(v) if isinstance(v, list) else v, check=_scales))
    crop: int = field(default=480, metadata=rule(kind=int, low=8, high=8192))
    step: int = field(default=240, metadata=rule(kind=int, low=1, high=8192))

    def __post_init__(self) -> None:
        problems = [_FLAGS[p.split(":")[0]] + p[p.index(":"):] for p in check_instance(self)]
        bad = [] if problems else [s for s in self.scales if self.crop % s]
        if bad:
            problems.append(f"--crop: {self.crop} is not divisible by the scale(s) "
                            f"{', '.join(map(str, bad))} (the LR sub-image would be cropped)")
        raise_problems(problems, SettingsError)


@dataclass
class PrepareResult:
    out: Path
    images: int  # source images prepared
    sub_images: int
    skipped: list[tuple[str, str]]  # (file, reason)
    reused: int  # images done by an earlier, interrupted run
    seconds: float


def hr_dir(out: Path) -> Path:
    return Path(out) / "HR_sub"


def lr_dir(out: Path, scale: int) -> Path:
    return Path(out) / "LR_bicubic" / f"X{scale}_sub"


def _starts(length: int, crop: int, step: int) -> list[int]:
    out = list(range(0, length - crop + 1, step))
    if length - (out[-1] + crop) > 0:
        out.append(length - crop)
    return out


def sub_count(height: int, width: int, crop: int, step: int) -> int:
    """How many sub-images :func:`sub_positions` cuts, without listing them."""
    return len(_starts(height, crop, step)) * len(_starts(width, crop, step))


def sub_positions(height: int, width: int, crop: int, step: int) -> list[tuple[int, int]]:
    """(top, left) of each sub-image, row by row, as BasicSR's extract_subimages.py cuts them."""
    tops, lefts = _starts(height, crop, step), _starts(width, crop, step)
    return [(top, left) for top in tops for left in lefts]


# ---------------------------------------------------------------------------- validation
def check_header(path: Path, crop: int) -> tuple[int, int]:
    """(height, width) of an 8-bit RGB image at least ``crop`` on each side; else InputError."""
    from PIL import Image, UnidentifiedImageError

    try:  # the header alone: a bomb (a huge claimed size) is refused before any decoding
        with open_image_header(path) as img:
            mode, (width, height) = img.mode, img.size
            rawmodes = [str(tile[3]) for tile in getattr(img, "tile", []) or []
                        if len(tile) > 3]
    except (OSError, UnidentifiedImageError, ValueError, Warning,
            Image.DecompressionBombError) as e:
        if isinstance(e, InputError):
            raise
        raise InputError(f"{shown(path)}: cannot read image ({first_line(e)})") from None
    # PIL reads a 16-bit RGB PNG as mode RGB and drops the low bits: its raw mode says 16.
    if mode in ("I", "F") or mode.startswith("I;16") or any(";16" in r for r in rawmodes):
        raise InputError(f"{path}: bit depth 16 or more (mode {mode}), expected 8-bit RGB")
    if mode != "RGB":
        raise InputError(f"{path}: colour mode {mode}, expected 8-bit RGB")
    if height < crop or width < crop:
        raise InputError(f"{path}: image is {width}x{height}, smaller than one {crop}x{crop} "
                         "sub-image (lower --crop or remove it)")
    return height, width


# ---------------------------------------------------------------------------- plan
def _plan(images: list[Path], settings: Settings, strict: bool) -> dict[str, Any]:
    """Sources, their sub-image positions and store slots, from the headers alone."""
    entries, skipped, slot = [], [], 0
    for path in images:
        try:
            height, width = check_header(path, settings.crop)
            _check_count(path, sub_count(height, width, settings.crop, settings.step), slot)
        except InputError as e:
            if strict:
                raise
            skipped.append({"file": path.name, "reason": str(e)})
            continue
        positions = sub_positions(height, width, settings.crop, settings.step)
        entries.append({"file": path.name, "height": height, "width": width, "slot": slot,
                        "positions": [list(p) for p in positions]})
        slot += len(positions)
    return {"format": FORMAT, "version": VERSION, "settings": asdict(settings),
            "images": entries, "skipped": skipped, "count": slot}


def _check_count(path: Path, count: int, before: int) -> None:
    """One image's sub-images, and the plan's so far, against the bounds."""
    if count > MAX_SUBS_PER_IMAGE:
        raise InputError(f"{shown(path)}: would give {count:,} sub-images; at most "
                         f"{MAX_SUBS_PER_IMAGE:,} an image (raise --step or --crop)")
    if before + count > MAX_SUBS:
        raise InputError(f"{shown(path)}: the preparation would pass {MAX_SUBS:,} sub-images; "
                         "raise --step or --crop, or prepare fewer images at a time")


def _check_out(out: Path, shapes: dict[str, tuple[int, ...]]) -> None:
    """``--out`` is new, empty, or an interrupted preparation of its own, and its disk has room
    for the store (checked before the sparse store files are made)."""
    if os.path.lexists(out) and out.is_dir() and any(out.iterdir()) and \
            not (out / _STATE / "plan.json").is_file():
        raise InputError(f"--out: {shown(out)} is not empty and holds no preparation to resume; "
                         "choose a new or empty folder")
    make_output_dir(out, "--out")
    need = sum(int(np.prod(shape)) for shape in shapes.values())
    free = shutil.disk_usage(out).free
    if need > free + sum(f.stat().st_size for f in (out / STORE).glob("*.npy")):
        raise InputError(f"--out: the store needs {need / 2**30:,.1f} GiB and {shown(out)} has "
                         f"{free / 2**30:,.1f} GiB free")


def _load_or_write_plan(out: Path, plan: dict[str, Any]) -> None:
    path = out / _STATE / "plan.json"
    if path.is_file():
        try:
            old = read_json_bounded(path, "preparation plan")
        except (OSError, ValueError):
            old = None
        if old != json.loads(json.dumps(plan)):  # compared as stored (tuples -> lists)
            raise InputError(f"{out}: holds a preparation with other settings or other source "
                             "images; use another --out, or delete it to start over")
        return
    write_atomic(path, json.dumps(plan, indent=1))


def _store_shapes(settings: Settings, count: int) -> dict[str, tuple[int, ...]]:
    c = settings.crop
    shapes = {"HR": (count, c, c, 3)}
    for s in settings.scales:
        shapes[f"X{s}"] = (count, c // s, c // s, 3)
    return shapes


def _make_store(out: Path, shapes: dict[str, tuple[int, ...]]) -> None:
    """Sparse, zero-filled ``.npy`` files of the final shapes (created once, atomically)."""
    for key, shape in shapes.items():
        path = out / STORE / f"{key}.npy"
        if path.is_file():
            try:
                if np.load(path, mmap_mode="r").shape == shape:
                    continue
            except (OSError, ValueError):
                pass
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape).flush()
        os.replace(tmp, path)


# ---------------------------------------------------------------------------- work
_stores: dict[str, np.memmap] = {}


def _open_stores(out: str, keys: list[str]) -> None:
    _stores.clear()
    for key in keys:
        _stores[key] = np.load(Path(out) / STORE / f"{key}.npy", mmap_mode="r+")


def _png(img: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG", compress_level=_PNG_LEVEL)
    return buf.getvalue()


def _write_png(path: Path, img: np.ndarray) -> str:
    """sha256 of the PNG at ``path``; written only if absent (an existing one is complete)."""
    if path.is_file():
        return hashlib.sha256(path.read_bytes()).hexdigest()
    data = _png(img)
    write_atomic(path, data)
    return hashlib.sha256(data).hexdigest()


def _process(task: tuple[str, str, dict[str, Any], dict[str, Any], bool]
             ) -> tuple[str, int, str]:
    """Prepare one source image; returns (file, sub-images, error or '')."""
    src, out, entry, settings, pngs = task
    path, out = Path(src) / entry["file"], Path(out)
    try:
        img = load_image(path)
        if img.shape[:2] != (entry["height"], entry["width"]):
            raise InputError(f"{path}: decoded as {img.shape[1]}x{img.shape[0]}, but its header "
                             f"says {entry['width']}x{entry['height']}")
    except InputError as e:
        return entry["file"], 0, str(e)
    stem, crop = Path(entry["file"]).stem, settings["crop"]
    subs = []
    for j, (top, left) in enumerate(entry["positions"]):
        name, slot = f"{stem}_s{j + 1:03d}.png", entry["slot"] + j
        hr = np.ascontiguousarray(img[top:top + crop, left:left + crop])
        files = {"HR": _write_png(hr_dir(out) / name, hr)} if pngs else {}
        _stores["HR"][slot] = hr
        for s in settings["scales"]:
            lr = bicubic_downsample(hr, s)
            if pngs:
                files[f"X{s}"] = _write_png(lr_dir(out, s) / name, lr)
            _stores[f"X{s}"][slot] = lr
        subs.append({"name": name, "slot": slot, "top": top, "left": left, "sha256": files})
    for store in _stores.values():
        store.flush()  # the slots reach the file before the marker says they did
    marker = {"file": entry["file"], "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
              "height": entry["height"], "width": entry["width"], "sub_images": subs}
    write_atomic(_marker(out, entry["file"]), json.dumps(marker, indent=1))
    return entry["file"], len(subs), ""


def _marker(out: Path, file: str) -> Path:
    return out / _STATE / "done" / f"{file}.json"


def _read_marker(out: Path, file: str) -> dict[str, Any] | None:
    try:
        return read_json_bounded(_marker(out, file), "completion marker")
    except (OSError, ValueError):
        return None


# ---------------------------------------------------------------------------- progress
class _Progress:
    """``prepare: done/total images, sub-images, elapsed, ETA`` on stderr."""

    def __init__(self, total: int, done: int, enabled: bool) -> None:
        self.total, self.done, self.start_done = total, done, done
        self.enabled, self.tty = enabled, sys.stderr.isatty()
        self.start = self.last = time.monotonic()
        self.subs = 0

    def update(self, subs: int) -> None:
        self.done += 1
        self.subs += subs
        now = time.monotonic()
        if not self.enabled or (now - self.last < 1.0 and self.done < self.total
                                and not self.tty):
            return
        self.last = now
        elapsed = now - self.start
        rate = (self.done - self.start_done) / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.done) / rate if rate > 0 else float("nan")
        line = (f"prepare: {self.done}/{self.total} images ({100 * self.done / self.total:.0f}%),"
                f" {self.subs} sub-images this run, {_clock(elapsed)} elapsed, ETA {_clock(eta)}")
        print(("\r" + line) if self.tty else line, end="" if self.tty else "\n",
              file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.enabled and self.tty:
            print(file=sys.stderr)


def _clock(seconds: float) -> str:
    if seconds != seconds:  # nan: not known yet
        return "?"
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


# ---------------------------------------------------------------------------- driver
def prepare(src: str | Path, out: str | Path, settings: Settings = Settings(), *,
            workers: int | None = None, strict: bool = False, progress: bool = True,
            pngs: bool = True) -> PrepareResult:
    """Prepare the images of ``src`` into ``out`` (see the module docstring); resumable.

    Args:
        src: Folder of HR images (PNG/JPEG/BMP).
        out: Output folder; a folder holding an interrupted preparation is resumed.
        settings: Crop, step and scales.
        workers: Processes (default: all cores); 0 or 1 works in this process.
        strict: Stop at the first bad image instead of naming and skipping it.
        progress: Progress line on stderr.
        pngs: Also write the sub-images as PNGs in BasicSR's layout (False: the store alone, as
            the loader's cache of a plain folder needs).
    """
    started = time.monotonic()
    src, out = Path(src).expanduser(), Path(out).expanduser()
    if not src.is_dir():
        raise InputError(f"{src}: source folder of HR images not found")
    images = list_images(src)
    if not images:
        raise InputError(f"{src}: no images found (expected .png/.jpg/.jpeg/.bmp files)")
    if out.resolve() == src.resolve():
        raise InputError(f"--out: {out} is the source folder; give another folder")
    plan = _plan(images, settings, strict)
    if not plan["images"]:
        raise InputError(f"{src}: no usable image ({plan['skipped'][0]['reason']})")
    shapes = _store_shapes(settings, plan["count"])
    _check_out(out, shapes)
    _load_or_write_plan(out, plan)
    _make_store(out, shapes)

    todo = [e for e in plan["images"] if _read_marker(out, e["file"]) is None]
    reused = len(plan["images"]) - len(todo)
    bar = _Progress(len(plan["images"]), reused, progress)
    for item in plan["skipped"]:
        print(f"prepare: skipped {item['reason']}", file=sys.stderr)
    failed = _run(src, out, todo, settings, workers, strict, bar, pngs)
    bar.close()
    for _, reason in failed:
        print(f"prepare: skipped {reason}", file=sys.stderr)
    if len(failed) == len(plan["images"]):
        raise InputError(f"{shown(src)}: no image could be prepared ({failed[0][1]})")
    skipped = [(s["file"], s["reason"]) for s in plan["skipped"]] + failed
    count = _write_manifest(out, plan, shapes, skipped)
    return PrepareResult(out=out, images=len(plan["images"]) - len(failed), sub_images=count,
                         skipped=skipped, reused=reused, seconds=time.monotonic() - started)


def _run(src: Path, out: Path, todo: list[dict], settings: Settings, workers: int | None,
         strict: bool, bar: _Progress, pngs: bool) -> list[tuple[str, str]]:
    """Process ``todo`` (in parallel); (file, reason) of the images that failed to decode."""
    keys = ["HR"] + [f"X{s}" for s in settings.scales]
    tasks = [(str(src), str(out), entry, asdict(settings), pngs) for entry in todo]
    workers = min(os.cpu_count() or 1, len(tasks)) if workers is None else workers
    failed = []

    def collect(result: tuple[str, int, str]) -> None:
        file, subs, error = result
        if error and strict:
            raise InputError(error)
        if error:
            failed.append((file, error))
        bar.update(subs)

    if workers <= 1 or len(tasks) <= 1:
        _open_stores(str(out), keys)
        for task in tasks:
            collect(_process(task))
        return failed
    # spawn, not fork: a training or a search that prepares its folder on first use has threads
    # (Ray, torch), and a forked child can inherit a lock one of them held. An executor, not a
    # Pool: a worker that cannot start breaks it with an error instead of being respawned forever.
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_open_stores, initargs=(str(out), keys))
    try:
        for future in as_completed([pool.submit(_process, task) for task in tasks]):
            collect(future.result())
    except BrokenProcessPool:
        raise InputError(f"{out}: a preparation worker could not start (a script that calls "
                         "prepare() needs an `if __name__ == '__main__':` guard)") from None
    finally:  # Ctrl-C or an error: drop the queued images; finished ones have their markers
        pool.shutdown(wait=True, cancel_futures=True)
    return failed


def _write_manifest(out: Path, plan: dict[str, Any], shapes: dict[str, tuple[int, ...]],
                    skipped: list[tuple[str, str]]) -> int:
    """``manifest.json`` and ``store/index.json`` from the markers; returns the sub-image count."""
    failed = {file for file, _ in skipped}
    sources, ranges = [], []
    for entry in plan["images"]:
        if entry["file"] in failed:
            continue
        marker = _read_marker(out, entry["file"])
        if marker is None:  # cannot happen after a complete run; never count a missing image
            raise InputError(f"{out}: {entry['file']} has no completion marker; run again")
        sources.append(marker)
        ranges.append([entry["slot"], len(entry["positions"])])
    settings = plan["settings"]
    layout = {"HR": str(hr_dir(Path("."))),
              **{f"X{s}": str(lr_dir(Path("."), s)) for s in settings["scales"]}}
    store = {key: {"file": f"{STORE}/{key}.npy", "shape": list(shape), "dtype": "uint8"}
             for key, shape in shapes.items()}
    count = sum(n for _, n in ranges)
    manifest = {"format": FORMAT, "version": VERSION, "settings": settings, "layout": layout,
                "store": store, "sub_images": count, "sources": sources,
                "skipped": [{"file": f, "reason": r} for f, r in sorted(skipped)]}
    index = {"format": FORMAT, "version": VERSION, "crop": settings["crop"],
             "scales": settings["scales"], "store": store, "ranges": ranges}
    write_atomic(out / STORE / "index.json", json.dumps(index))
    write_atomic(out / MANIFEST, json.dumps(manifest, indent=1))
    return count
