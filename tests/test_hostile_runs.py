"""Hostile run folders, datasets and environments: what people share is input too.

A colleague's run folder, a downloaded dataset, a cache directory or an environment variable is
handed to the tool as readily as a spec. Each case runs the real CLI in its own forked process
under the limits of ``tests/test_hostile_inputs.py`` (RLIMIT_AS: the imports plus 1 GiB;
RLIMIT_CPU: 10 s), and asserts the exit code, the exact number of stderr lines, no traceback, the
fragments the message must hold, that no marker file appears (a payload that would write one if
it ran), and, where nothing should be written, that every file of the case folder is unchanged.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.test_hostile_inputs import ALIAS_BOMB, _tree_hashes, png, runner  # noqa: F401

RUN = "run"
MARKER = "PWNED"
PASSWORD = "S3cretPW"
PICKED = "00003"  # a searched trial of the synthetic run (tests/analysis/conftest.py)
# Python that writes the marker into the case folder, if anything ever executes it
PAYLOAD = "open({marker!r}, 'w').write('ran')"


def marker_of(case: Path) -> Path:
    """Where a payload of ``case`` writes its marker: short (a spec name has 100 characters at
    most) and absolute (the arch.py check runs in a folder of its own)."""
    return Path("/tmp") / f"{MARKER}-{hashlib.sha1(str(case).encode()).hexdigest()[:8]}"


# ---------------------------------------------------------------------------- run mutations
def _edit_spec(run: Path, key: str, value) -> None:
    import yaml

    path = run / "trials" / PICKED / "spec.yaml"
    spec = yaml.safe_load(path.read_text())
    spec[key] = value
    path.write_text(yaml.safe_dump(spec, sort_keys=False))


def _name_payload(printable: bool) -> Callable[[Path], None]:
    """The spec name breaks out of a triple-quoted docstring into code (with or without a
    newline: a name with one is refused by the spec, one without must stay data)."""
    def setup(case: Path) -> None:
        code = PAYLOAD.format(marker=str(marker_of(case)))
        name = f'x"""; {code}; """' if printable else f'x"""\n{code}\n"""'
        _edit_spec(case / RUN, "name", name)
    return setup


def _trials_csv(run: Path) -> Path:
    return run / "trials.csv"


def _cut_last_row(case: Path) -> None:
    """The table cut in the middle of its last row's last number (``37.9`` -> ``3``)."""
    path = _trials_csv(case / RUN)
    text = path.read_text().rstrip("\n")
    path.write_text(text[:-2])


def _cut_inside_quoted_cell(case: Path) -> None:
    path = _trials_csv(case / RUN)
    text = path.read_text()
    lines = text.splitlines(keepends=True)
    head = "".join(lines[:6])
    path.write_text(head + lines[6][:lines[6].index('"') + 40])


def _replace_cell(column: str, value: str, row: int = 3) -> Callable[[Path], None]:
    def setup(case: Path) -> None:
        import csv
        import io

        path = _trials_csv(case / RUN)
        records = list(csv.reader(io.StringIO(path.read_text(), newline="")))
        records[row + 1][records[0].index(column)] = value
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows(records)
        path.write_text(buf.getvalue())
    return setup


def _duplicate_header(case: Path) -> None:
    path = _trials_csv(case / RUN)
    header, rest = path.read_text().split("\n", 1)
    path.write_text(header.replace("psnr_set14", "psnr_set5") + "\n" + rest)


def _write(relative: str, content: str | bytes) -> Callable[[Path], None]:
    def setup(case: Path) -> None:
        path = case / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if os.path.lexists(path):
            path.unlink()
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return setup


def _fifo(relative: str) -> Callable[[Path], None]:
    def setup(case: Path) -> None:
        path = case / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if os.path.lexists(path):
            path.unlink()
        os.mkfifo(path)
    return setup


def _symlink(relative: str, target: str) -> Callable[[Path], None]:
    def setup(case: Path) -> None:
        path = case / relative
        if os.path.lexists(path):
            path.unlink()
        path.symlink_to(target if target.startswith("/") else case / target)
    return setup


def _truncate(relative: str, keep: int = 100) -> Callable[[Path], None]:
    def setup(case: Path) -> None:
        path = case / relative
        path.write_bytes(path.read_bytes()[:keep])
    return setup


def _earlier_export(case: Path) -> None:
    from search_space.spec import ArchSpec

    arch_id = ArchSpec.from_file(case / RUN / "trials" / PICKED / "spec.yaml").arch_id()
    folder = case / RUN / "exports" / arch_id
    folder.mkdir(parents=True)
    (folder / "train.yaml").write_text("# my edited training config\niterations: 5\n")


def _huge_checkpoint(params: str) -> Callable[[Path], None]:
    """A tiny checkpoint whose spec claims a huge network (no weights inside)."""
    def setup(case: Path) -> None:
        import torch

        repeat = {"161M": 9, "1.9G": 110}[params]
        spec = {"scale": 4, "channels": 1024, "body": [{"block": "rb", "repeat": repeat}]}
        torch.save({"format": "esrnas", "version": 1, "spec": spec, "model_deploy": {}},
                   case / "m.pth")
    return setup


def _huge_trial_spec(case: Path) -> None:
    """The picked trial's spec made a 1.9-billion-parameter network, its arch_id updated to
    match (so only the size check can stop it)."""
    from search_space.spec import ArchSpec

    _edit_spec(case / RUN, "channels", 1024)
    _edit_spec(case / RUN, "body", [{"block": "rb", "repeat": 110}])
    arch_id = ArchSpec.from_file(case / RUN / "trials" / PICKED / "spec.yaml").arch_id()
    _replace_cell("arch_id", arch_id)(case)


def _images(**files: bytes) -> Callable[[Path], None]:
    def setup(case: Path) -> None:
        (case / "src").mkdir()
        for name, data in files.items():
            (case / "src" / name).write_bytes(data)
    return setup


def _both(*setups: Callable[[Path], None]) -> Callable[[Path], None]:
    def setup(case: Path) -> None:
        for s in setups:
            s(case)
    return setup


def _good_png() -> bytes:
    import zlib  # noqa: F401  (png() compresses the rows)

    rows = b"".join(b"\x00" + bytes(range(48)) for _ in range(16))  # 16x16 RGB
    return png(16, 16, rows=rows)


# ---------------------------------------------------------------------------- the cases
# (id, argv, setup, env, exit code, stderr lines (None: any), fragments, nothing written)
EXPORT = ["export", RUN, "--pick", PICKED, "--no-onnx"]
CASES = [
    # code execution on export
    ("export-name-payload-newline", EXPORT, _name_payload(printable=False), {}, 2, 1,
     ["spec.yaml", "name", "one-line"], True),
    ("export-name-payload-printable", EXPORT, _name_payload(printable=True), {}, 0, 0, [],
     False),
    # hangs and unbounded reads
    ("pareto-search-yaml-alias-bomb", ["pareto", RUN], _write(f"{RUN}/search.yaml", ALIAS_BOMB),
     {}, 2, 1, ["search.yaml", "aliases"], True),
    ("export-search-yaml-alias-bomb", EXPORT, _write(f"{RUN}/search.yaml", ALIAS_BOMB), {}, 2, 1,
     ["search.yaml", "aliases"], True),
    ("pareto-search-yaml-fifo", ["pareto", RUN], _fifo(f"{RUN}/search.yaml"), {}, 2, 1,
     ["search.yaml", "named pipe"], True),
    ("pareto-search-yaml-dev-zero", ["pareto", RUN], _symlink(f"{RUN}/search.yaml", "/dev/zero"),
     {}, 2, 1, ["search.yaml", "outside the run"], True),
    ("show-fifo", ["show", "pipe.yaml"], _fifo("pipe.yaml"), {}, 2, 1,
     ["pipe.yaml", "named pipe"], True),
    ("show-dev-zero", ["show", "/dev/zero"], None, {}, 2, 1, ["/dev/zero", "regular file"], True),
    ("eval-checkpoint-161M-params", ["eval", "m.pth", "--data", "Set5"], _huge_checkpoint("161M"),
     {}, 2, 1, ["m.pth", "parameters", "limit"], True),
    ("eval-checkpoint-1.9G-params", ["eval", "m.pth", "--data", "Set5"],
     _huge_checkpoint("1.9G"), {}, 2, 1, ["m.pth", "parameters"], True),
    # silent corruption
    ("pareto-torn-last-row", ["pareto", RUN], _cut_last_row, {}, 2, 1,
     ["trials.csv", "line 17", "cut short"], True),
    ("pareto-cut-in-quoted-cell", ["pareto", RUN], _cut_inside_quoted_cell, {}, 2, 1,
     ["trials.csv", "line 7"], True),
    ("export-torn-last-row", EXPORT, _cut_last_row, {}, 2, 1, ["trials.csv", "cut short"], True),
    ("pareto-short-row", ["pareto", RUN], _write(f"{RUN}/trials.csv",
                                                "trial_id,status,psnr\n00001,completed\n"),
     {}, 2, 1, ["trials.csv", "line 2", "2 cells"], True),
    ("pareto-text-in-number-column", ["pareto", RUN], _replace_cell("psnr", "37.9dB"), {}, 2, 1,
     ["trials.csv", "line 5", "psnr", "finite number"], True),
    ("pareto-duplicate-column", ["pareto", RUN], _duplicate_header, {}, 2, 1,
     ["trials.csv", "repeats column", "psnr_set5"], True),
    ("export-truncated-checkpoint", EXPORT, _truncate(f"{RUN}/trials/{PICKED}/model_deploy.pth"),
     {}, 2, 1, ["model_deploy.pth", "checkpoint"], True),
    ("export-never-overwrites", EXPORT, _earlier_export, {}, 2, 1,
     ["already exported", "--force"], True),
    ("export-search-yaml-seed-not-an-integer", EXPORT, _write(f"{RUN}/search.yaml", "seed: abc\n"),
     {}, 2, 1, ["search.yaml", "seed", "expected an integer"], True),
    ("prepare-out-not-empty", ["data", "prepare", "src", "--out", "junk", "--crop", "8",
                               "--scale", "4"],
     _both(_images(**{"a.png": _good_png()}), _write("junk/keep.txt", "mine")), {}, 2, 1,
     ["--out", "junk", "not empty"], True),
    # data preparation
    ("prepare-bomb-header-skipped", ["data", "prepare", "src", "--out", "out", "--crop", "8",
                                     "--scale", "2"],
     _images(**{"bomb.png": png(100000, 100000), "good.png": _good_png()}), {}, 0, None,
     ["bomb.png", "100000x100000", "skipped"], False),
    ("prepare-unbounded-plan", ["data", "prepare", "src", "--out", "out", "--crop", "8",
                                "--step", "1", "--scale", "4"],
     _images(**{"big.png": png(2048, 2048)}), {}, 2, 1, ["big.png", "sub-images", "--step"],
     True),
    # bad input is exit 2, one line
    ("launch-out-under-file", ["launch", "--budget", "1", "--out", "f/run"], _write("f", "x"), {},
     2, 1, ["--out", "f/run"], True),
    ("launch-out-in-proc", ["launch", "--budget", "1", "--out", "/proc/esrnas-run"], None, {}, 2,
     1, ["--out", "/proc"], True),
    ("train-out-under-file", ["train", "t.yaml", "--out", "f/o"],
     _both(_write("f", "x"), _write("t.yaml", "arch: {scale: 2, channels: 8, body: [conv]}\n"
                                              "data: {train: Set5, val: []}\niterations: 1\n")),
     {}, 2, 1, ["--out", "f/o"], True),
    ("cache-dir-is-file", ["show", "rlfn"], _write("f", "x"), {"ESRNAS_CACHE_DIR": "f"}, 2, 1,
     ["ESRNAS_CACHE_DIR", "not a folder"], True),
    ("cache-dir-in-proc", ["show", "rlfn"], None, {"ESRNAS_CACHE_DIR": "/proc/esrnas"}, 2, 1,
     ["ESRNAS_CACHE_DIR", "system folder"], True),
    ("image-cache-mb-lots", ["show", "rlfn"], None, {"ESRNAS_IMAGE_CACHE_MB": "lots"}, 2, 1,
     ["ESRNAS_IMAGE_CACHE_MB", "'lots'"], True),
    ("pareto-binary-search-yaml", ["pareto", RUN], _write(f"{RUN}/search.yaml", b"\xff\xfe\x81"),
     {}, 2, 1, ["search.yaml", "UTF-8"], True),
    ("pareto-binary-calibration", ["pareto", RUN],
     _write(f"{RUN}/calibration.json", b"\x89\xff\x00\x81"), {}, 2, 1,
     ["calibration.json", "UTF-8"], True),
    ("export-exports-is-file", EXPORT, _write(f"{RUN}/exports", "x"), {}, 2, 1,
     ["exports", "not a folder"], True),
    ("show-duplicate-key", ["show", "s.yaml"],
     _write("s.yaml", "scale: 2\nchannels: 8\nchannels: 1024\nbody: [conv]\n"), {}, 2, 1,
     ["s.yaml", "duplicate key 'channels'", "line 3"], True),
    ("show-newline-in-path", ["show", "a\nb.yaml"], None, {}, 2, 1, ["a\\nb.yaml"], True),
    ("export-pick-empty", ["export", RUN, "--pick", ""], None, {}, 2, 1, ["--pick", "empty"],
     True),
    ("launch-storage-password", ["launch", "--budget", "1", "--out", "r", "--storage",
                                 f"postgresql://alice:{PASSWORD}@127.0.0.1:1/db"], None, {}, 2, 1,
     ["--storage", "alice@127.0.0.1:1"], True),
    # found by thinking as the attacker
    ("export-spec-symlink-outside", EXPORT,
     _both(_write("outside.yaml", "scale: 2\nchannels: 4\nbody: [conv]\n"),
           _symlink(f"{RUN}/trials/{PICKED}/spec.yaml", "outside.yaml")), {}, 2, 1,
     ["spec.yaml", "outside the run"], True),
    ("export-weights-symlink-outside", EXPORT,
     _symlink(f"{RUN}/trials/{PICKED}/model_deploy.pth", "/etc/hostname"), {}, 2, 1,
     ["model_deploy.pth", "outside the run"], True),
    ("export-trial-dir-symlink-outside", EXPORT,
     lambda case: (shutil.move(case / RUN / "trials" / PICKED, case / "elsewhere"),
                   (case / RUN / "trials" / PICKED).symlink_to(case / "elsewhere")), {}, 2, 1,
     ["trial folder", "outside the run"], True),
    ("export-trial-id-dotdot", ["export", RUN, "--pick", "knee"],
     _replace_cell("trial_id", "../../elsewhere"), {}, 2, 1,
     ["trials.csv", "trial_id", "folder name"], True),
    ("export-arch-id-disagrees", EXPORT, _replace_cell("arch_id", "0123456789ab"), {}, 2, 1,
     ["arch_id", "0123456789ab"], True),
    ("pareto-state-not-mapping", ["pareto", RUN], _write(f"{RUN}/state.json", "[1, 2]\n"), {}, 2,
     1, ["state.json", "expected a mapping"], True),
    ("export-huge-spec-in-run", EXPORT, _huge_trial_spec, {}, 2, 1,
     [PICKED, "parameters", "limit"], True),
]


@pytest.fixture(scope="module")
def run_template(tmp_path_factory):
    from tests.analysis.conftest import build_run

    return build_run(tmp_path_factory.mktemp("run"))


def test_there_are_enough_cases():
    assert len(CASES) >= 35
    assert len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("argv, setup, env, code, n_lines, fragments, unchanged",
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_hostile_run(runner, run_template, tmp_path_factory, argv, setup, env, code, n_lines,  # noqa: F811
                     fragments, unchanged):
    case, logs = tmp_path_factory.mktemp("case"), tmp_path_factory.mktemp("logs")
    if RUN in argv:
        shutil.copytree(run_template, case / RUN)
    if setup is not None:
        setup(case)
    before = _tree_hashes(case)
    env = {"ESRNAS_LOG_DIR": str(logs / "nas"), "HOME": str(case / ".home"),
           "ESRNAS_CACHE_DIR": "off", **env}
    rc, out, err = runner.run(argv, case, env, logs)
    assert "Traceback" not in out + err, err
    assert rc == code, err
    lines = err.rstrip("\n").splitlines()
    if n_lines is not None:
        assert len(lines) == n_lines, err
    if code == 2:
        assert lines[0].startswith(f"nas {argv[0]}: error: "), err
    for fragment in fragments:
        assert fragment in err, (fragment, err)
    assert not (case / MARKER).exists() and not marker_of(case).exists()
    assert PASSWORD not in out + err
    if unchanged:
        assert _tree_hashes(case) == before  # nothing written, nothing overwritten


def test_the_printable_payload_stays_data(run_template, tmp_path, capsys):
    """The exported arch.py neither holds the name nor runs it; the model card has it as text."""
    from nas.cli import main

    case = tmp_path
    shutil.copytree(run_template, case / RUN)
    _name_payload(printable=True)(case)
    assert main([*EXPORT[:1], str(case / RUN), *EXPORT[2:], "--json"]) == 0, \
        capsys.readouterr().err
    folder = Path(json.loads(capsys.readouterr().out)["directory"])
    source = (folder / "arch.py").read_text()
    assert MARKER not in source and 'x"""' not in source
    assert MARKER in (folder / "arch.yaml").read_text()  # kept as data
    assert not marker_of(case).exists()


def test_a_crash_with_an_unusable_log_dir_is_still_one_line(tmp_path, monkeypatch, capsys):
    import nas.commands.show as show
    from nas.cli import main

    def boom(self, args):
        raise RuntimeError(f"postgresql://alice:{PASSWORD}@db/x is on fire\nsecond line")

    (tmp_path / "file").write_text("x")
    monkeypatch.setattr(show.Command, "run", boom)
    monkeypatch.setenv("ESRNAS_LOG_DIR", str(tmp_path / "file"))
    assert main(["show", "fmen_s"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "Traceback" not in err[0], err
    assert "traceback not saved" in err[0] and "alice:***@db" in err[0]
    assert PASSWORD not in err[0]
