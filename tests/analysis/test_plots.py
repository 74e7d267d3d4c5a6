"""The pure ``*_info`` functions of the plots, the thin figure builders, and HTML/PNG writing."""

from __future__ import annotations

import json
import math
import shutil
from types import SimpleNamespace

import pandas as pd
import pytest

from analysis import formatting, pareto, plots
from analysis.plots.parallel import _trial_features
from analysis.run import load_run

OBJECTIVES = {"psnr": "maximize", "runtime_ms": "minimize", "peak_memory_mb": "minimize"}


@pytest.fixture(scope="module")
def trials(run_dir) -> pd.DataFrame:
    return load_run(run_dir).trials


def test_spec_summary_and_hover_text(trials):
    spec = {"scale": 4, "channels": 48, "body": [{"block": "conv"},
                                                 {"block": "rlfb", "repeat": 4,
                                                  "args": {"esa": "esa"}}],
            "fusion": "sequential", "upsampler": "pixelshuffle"}
    assert formatting.spec_summary(spec) == "x4 C=48 | conv, rlfb x4 (esa=esa) | sequential | " \
                                       "pixelshuffle"
    assert formatting.spec_summary(json.dumps(spec)) == formatting.spec_summary(spec)
    assert formatting.spec_summary("not json") == ""
    row = trials.iloc[5].to_dict()
    text = plots.hover_text(row)
    assert f"trial {row['trial_id']}" in text and row["arch_id"] in text
    assert formatting.spec_summary(row["spec"]) in text
    for name in ("psnr", "runtime_ms", "peak_memory_mb", "params", "macs_g", "psnr_set5"):
        assert f"{name}: " in text
    assert "hparams: " in text and "lr=" in text


def test_scatter_info_partitions_the_plotted_rows(trials):
    info = plots.scatter_info(trials, "runtime_ms", OBJECTIVES, scale=2)
    by_kind = {layer.kind: layer for layer in info.layers}
    drawn = [t for k in ("front", "dominated", "anchor") for t in by_kind[k].trial_ids]
    assert by_kind["knee"].trial_ids == [trials.loc[pareto.knee_point(trials, OBJECTIVES),
                                                    "trial_id"]]
    eligible = trials[pareto.eligible_mask(trials, {"psnr": "maximize", "runtime_ms": "min"})]
    assert sorted(drawn) == sorted(eligible["trial_id"])
    assert len(drawn) == len(set(drawn))
    front = set(trials.loc[pareto.pareto_mask(trials, OBJECTIVES), "trial_id"])
    anchors = set(trials.loc[trials["is_anchor"], "trial_id"])
    assert set(by_kind["front"].trial_ids) == front - anchors
    assert set(by_kind["anchor"].trial_ids) == anchors
    assert by_kind["anchor"].labels == list(trials.loc[trials["is_anchor"], "anchor"])
    # failed / running decoys (the best numbers of all) are not drawn
    for status in ("failed", "running"):
        assert not set(trials.loc[trials["status"] == status, "trial_id"]) & set(drawn)
    # official weights: a separate layer at the anchors' measured x, hidden by default
    official = by_kind["official"]
    assert not official.visible
    assert official.y == list(trials.loc[trials["is_anchor"], "psnr_official"])
    assert "published" not in by_kind  # runtimes from other hardware are never drawn
    assert "other hardware" in info.note
    # the 2-D front line is the front of (runtime_ms, psnr), sorted by x
    pair = {"runtime_ms": "minimize", "psnr": "maximize"}
    expected = pareto.pareto_front(trials, pair).sort_values("runtime_ms")
    assert info.front_line[0] == list(expected["runtime_ms"])


def test_published_layer_only_for_comparable_axes(trials):
    reference = {"params": {"x2": 111_000, "x4": 123_000}, "torch_macs_g_256": 7.5}
    fake = SimpleNamespace(reference=reference, published={"params_k": 120})
    lookup = {"fmen_s": fake, "rlfn": fake}.__getitem__
    at_x2 = plots.scatter_info(trials, "params", OBJECTIVES, scale=2, anchor_lookup=lookup)
    layer = next(layer for layer in at_x2.layers if layer.kind == "published")
    assert [x for x in layer.x if not math.isnan(x)] == [111_000.0] * 4  # 2 anchors x 2 ends
    assert "official code, x2" in layer.hover[0]
    # MACs of the reference are for x4 inputs of 3x256x256 only
    at_x4 = plots.scatter_info(trials, "macs_g", OBJECTIVES, scale=4, anchor_lookup=lookup)
    assert [x for x in next(la for la in at_x4.layers if la.kind == "published").x
            if not math.isnan(x)] == [7.5] * 4
    assert at_x4.x_label.startswith("MACs [G] (3x256x256 input)")
    x2_macs = plots.scatter_info(trials, "macs_g", OBJECTIVES, scale=2, anchor_lookup=lookup)
    assert all(layer.kind != "published" for layer in x2_macs.layers)
    # MACs counted at another input size are not comparable with the reference's
    small = plots.scatter_info(trials, "macs_g", OBJECTIVES, scale=4, input_hw=(64, 64),
                               anchor_lookup=lookup)
    assert all(layer.kind != "published" for layer in small.layers)
    assert small.x_label.startswith("MACs [G] (3x64x64 input)")
    assert plots.published_figure(SimpleNamespace(reference={}, published={"params_k": 120}),
                                  "params", 4) == (120_000.0, "paper (K, x4)")
    assert plots.published_figure(fake, "runtime_ms", 4) is None


def test_log_axis_for_wide_cost_ranges(trials):
    assert plots.scatter_info(trials, "params", OBJECTIVES, scale=2).log_x  # 1e2 .. 3e5
    assert not plots.scatter_info(trials, "runtime_ms", OBJECTIVES, scale=2).log_x


def test_scatter3d_and_hypervolume_info(trials):
    info = plots.scatter3d_info(trials, OBJECTIVES, ("runtime_ms", "peak_memory_mb", "psnr"))
    for layer in info.layers:
        rows = trials.set_index("trial_id").loc[layer.trial_ids]
        assert info.z[layer.name] == list(rows["psnr"])
        assert layer.x == list(rows["runtime_ms"])
    hv = plots.hypervolume_info(trials, OBJECTIVES)
    history = pareto.hypervolume_history(trials, OBJECTIVES)
    assert hv.values == list(history["hypervolume"])
    assert hv.values[-1] == pytest.approx(pareto.hypervolume(trials, OBJECTIVES))
    assert "worst observed + 10%" in hv.reference_note


def test_parallel_info_drops_constants_and_codes_text(trials):
    info = plots.parallel_info(trials)
    searched = trials[(trials["status"] == "completed") & ~trials["is_anchor"]]
    assert info.trial_ids == list(searched["trial_id"])
    labels = [d.label for d in info.dimensions]
    assert labels[-1] == plots.METRIC_LABELS["psnr"]
    assert "fusion" not in labels  # the same in every searched trial
    teacher = next(d for d in info.dimensions if d.label == "distill.teacher")
    assert teacher.ticktext == ["-", "rlfn"]  # missing (no distillation) first
    expected = [1.0 if json.loads(h)["distill"] else 0.0 for h in searched["hparams"]]
    assert teacher.values == expected
    # a numeric dimension with gaps (no distillation -> no weight) is coded in numeric order
    weight = next(d for d in info.dimensions if d.label == "distill.weight")
    assert weight.ticktext == ["-", "0.5", "1"]
    assert "activation" not in labels and "distill" not in labels  # constant: "default", "-"
    channels = next(d for d in info.dimensions if d.label == "channels")
    assert channels.ticktext is None
    assert channels.values == [float(json.loads(s)["channels"]) for s in searched["spec"]]


def test_hyperparameters_never_hide_spec_features():
    row = {"spec": json.dumps({"scale": 2, "channels": 8, "body": ["conv"]}),
           "hparams": json.dumps({"channels": 99, "lr": 1e-3})}
    features = _trial_features(row)
    assert features["channels"] == 8 and features["hparams.channels"] == 99
    assert features["lr"] == 1e-3


def test_figure_builders(trials):
    scatter = plots.plot_scatter(plots.scatter_info(trials, "runtime_ms", OBJECTIVES, scale=2))
    names = [trace.name for trace in scatter.data]
    assert names[0] == "2-D front (runtime_ms, psnr)"
    assert "anchors (this run's protocol)" in names
    official = next(t for t in scatter.data if t.name.startswith("anchors, official"))
    assert official.visible == "legendonly"
    assert scatter.layout.xaxis.type == "linear"
    anchors = next(t for t in scatter.data if t.name == "anchors (this run's protocol)")
    along_x = [anchors.textposition[i] for i in sorted(range(len(anchors.x)),
                                                        key=lambda i: anchors.x[i])]
    assert len(along_x) >= 2 and all(a != b for a, b in zip(along_x[:-1], along_x[1:], strict=True))
    fig3d = plots.plot_scatter3d(plots.scatter3d_info(trials, OBJECTIVES))
    assert len(fig3d.data) == 3
    parallel = plots.plot_parallel(plots.parallel_info(trials))
    assert len(parallel.data[0].dimensions) == len(plots.parallel_info(trials).dimensions)


def test_write_figures_without_a_browser_writes_html_and_warns(trials, tmp_path, monkeypatch):
    import kaleido
    import plotly.io
    from choreographer.browsers.chromium import Chromium

    def no_download(*args, **kwargs):
        raise AssertionError("kaleido must never download a browser")

    monkeypatch.delenv("BROWSER_PATH", raising=False)
    monkeypatch.setattr(Chromium, "find_browser", staticmethod(lambda *a, **k: None))
    for module, name in ((kaleido, "get_chrome"), (kaleido, "get_chrome_sync"),
                         (plotly.io, "get_chrome")):
        monkeypatch.setattr(module, name, no_download)
    fig = plots.plot_hypervolume(plots.hypervolume_info(trials, OBJECTIVES))
    notes = plots.write_figures({tmp_path / "pareto_hv.html": fig})
    assert len(notes) == 1 and "no Chrome/Chromium found" in notes[0]
    assert "\n" not in notes[0]
    html = (tmp_path / "pareto_hv.html").read_text()
    # standalone: plotly.js is inlined, nothing is loaded from beside the file
    assert 'src="plotly.min.js"' not in html and "Plotly.newPlot" in html
    assert len(html) > 1_000_000 and not (tmp_path / "plotly.min.js").exists()
    assert not list(tmp_path.glob("*.png")) and not list(tmp_path.glob(".*tmp*"))


@pytest.mark.skipif(not (shutil.which("chromium") or shutil.which("google-chrome")),
                    reason="no Chrome/Chromium installed (apt-get install -y chromium)")
def test_write_figures_renders_png(trials, tmp_path):
    from PIL import Image

    fig = plots.plot_scatter(plots.scatter_info(trials, "runtime_ms", OBJECTIVES, scale=2))
    assert plots.write_figures({tmp_path / "pareto_runtime.html": fig}) == []
    with Image.open(tmp_path / "pareto_runtime.png") as image:
        assert image.format == "PNG" and image.size == (1000, 640)
        # not blank: the red front markers are there
        colours = image.convert("RGB").getcolors(1 << 20)
        assert any(c[1] == (214, 39, 40) for c in colours)
