"""Fronts and ranks against brute force, hypervolume against hand-computed areas, knee, filters."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis import pareto
from search_space.errors import InputError
from tests.analysis.conftest import brute_force_front

OBJECTIVE_SETS = [
    {"psnr": "maximize", "runtime_ms": "minimize"},
    {"psnr": "maximize", "runtime_ms": "minimize", "peak_memory_mb": "minimize"},
    {"psnr": "maximize", "params": "minimize", "macs_g": "minimize"},
]


def random_trials(seed: int, n: int = 60) -> pd.DataFrame:
    """Random metrics on a coarse grid (many ties), random statuses, some missing values."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "trial_id": [f"t{i}" for i in range(n)],
        "number": rng.permutation(n),
        "status": rng.choice(["completed"] * 6 + ["failed", "running", "pruned", "infeasible"],
                             n),
        "psnr": rng.integers(0, 8, n) * 0.1 + 30,
        "runtime_ms": rng.integers(1, 9, n).astype(float),
        "peak_memory_mb": rng.integers(1, 9, n).astype(float),
        "params": rng.integers(1, 9, n) * 1000.0,
        "macs_g": rng.integers(1, 9, n) * 0.5,
    })
    df.loc[rng.choice(n, 4, replace=False), "runtime_ms"] = np.nan
    return df


def peel_ranks(df: pd.DataFrame, objectives: dict) -> dict:
    """Front index of every eligible row by repeatedly removing the brute-force front."""
    remaining, ranks, rank = df.copy(), {}, 0
    while True:
        front = brute_force_front(remaining, objectives)
        if not front:
            return ranks
        ranks.update({label: rank for label in front})
        remaining = remaining.drop(index=list(front))
        rank += 1


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("objectives", OBJECTIVE_SETS, ids=lambda o: "-".join(o))
def test_front_and_ranks_equal_brute_force(seed, objectives):
    df = random_trials(seed)
    mask = pareto.pareto_mask(df, objectives)
    assert set(df.index[mask]) == brute_force_front(df, objectives)
    ranks = pareto.nondominated_ranks(df, objectives)
    expected = peel_ranks(df, objectives)
    assert {k: int(v) for k, v in ranks.dropna().items()} == expected
    assert ranks.isna().sum() == len(df) - len(expected)


def test_only_completed_rows_with_all_objectives_compete():
    df = pd.DataFrame({"trial_id": list("abcd"), "status": ["completed", "failed", "running",
                                                            "completed"],
                       "psnr": [30.0, 40.0, 40.0, np.nan], "runtime_ms": [10.0, 1.0, 1.0, 1.0]})
    objectives = {"psnr": "maximize", "runtime_ms": "minimize"}
    assert list(pareto.pareto_front(df, objectives)["trial_id"]) == ["a"]


def test_equal_points_share_the_front_and_front_is_sorted_best_first():
    df = pd.DataFrame({"trial_id": list("abcde"), "status": ["completed"] * 5,
                       "psnr": [30.0, 31.0, 31.0, 29.0, 30.5],
                       "runtime_ms": [5.0, 9.0, 9.0, 6.0, 7.0]})
    front = pareto.pareto_front(df, {"psnr": "maximize", "runtime_ms": "minimize"})
    assert list(front["trial_id"]) == ["b", "c", "e", "a"]


def test_hypervolume_2d_matches_hand_computed_area():
    # normalised losses (0, 1), (0.5, 0.5), (1, 0); reference (1.1, 1.1):
    # 1.1 * 0.1 + 0.6 * 0.5 + 0.1 * 0.5 = 0.46
    df = pd.DataFrame({"trial_id": list("abcd"), "status": ["completed"] * 3 + ["failed"],
                       "psnr": [30.0, 29.0, 28.0, 35.0], "runtime_ms": [30.0, 20.0, 10.0, 1.0]})
    hv = pareto.hypervolume(df, {"psnr": "maximize", "runtime_ms": "minimize"})
    assert hv == pytest.approx(0.46, abs=1e-12)


def test_hypervolume_3d_two_boxes_inclusion_exclusion():
    # normalised losses a = (0, 1, 0.5), b = (1, 0, 0), c = (1, 1, 1) (dominated); reference 1.1:
    # box a 1.1*0.1*0.6 = 0.066, box b 0.1*1.1*1.1 = 0.121, overlap 0.1*0.1*0.6 = 0.006
    df = pd.DataFrame({"trial_id": ["a", "b", "c"], "status": ["completed"] * 3,
                       "psnr": [30.0, 28.0, 28.0], "runtime_ms": [10.0, 0.0, 10.0],
                       "peak_memory_mb": [5.0, 0.0, 10.0]})
    objectives = {"psnr": "maximize", "runtime_ms": "minimize", "peak_memory_mb": "minimize"}
    assert pareto.hypervolume(df, objectives) == pytest.approx(0.066 + 0.121 - 0.006, abs=1e-12)


def test_hypervolume_history_is_monotone_and_ends_at_the_total():
    df = random_trials(7)
    objectives = OBJECTIVE_SETS[1]
    history = pareto.hypervolume_history(df, objectives)
    values = history["hypervolume"].to_numpy()
    assert len(history) == len(df)
    assert np.all(np.diff(values) >= -1e-12)
    assert values[-1] == pytest.approx(pareto.hypervolume(df, objectives))
    # trial-number order, and a non-eligible trial repeats the previous value
    assert list(history["number"]) == sorted(df["number"])
    ordered = df.sort_values("number")
    eligible = pareto.eligible_mask(ordered, objectives).to_numpy()
    for i in np.flatnonzero(~eligible):
        if i > 0:
            assert values[i] == values[i - 1]
    # the history is the hypervolume of each prefix, with the final bounds
    bounds = pareto.normalisation_bounds(df, objectives)
    k = len(df) // 2
    assert values[k - 1] == pytest.approx(
        pareto.hypervolume(ordered.iloc[:k], objectives, bounds=bounds))


def _front_frame(points: list[tuple[float, ...]]) -> pd.DataFrame:
    """Rows with losses ``points`` (all minimised), as runtime/memory/params columns."""
    columns = ["runtime_ms", "peak_memory_mb", "params"][: len(points[0])]
    df = pd.DataFrame(points, columns=columns)
    df.insert(0, "status", "completed")
    df.insert(0, "trial_id", [f"p{i}" for i in range(len(df))])
    return df


def test_knee_2d_is_the_point_farthest_below_the_extremes_line():
    df = _front_frame([(0.0, 1.0), (0.6, 0.35), (0.2, 0.2), (1.0, 0.0), (0.05, 0.7)])
    objectives = {"runtime_ms": "minimize", "peak_memory_mb": "minimize"}
    assert df.loc[pareto.knee_point(df, objectives), "trial_id"] == "p2"


def test_knee_3d_uses_the_plane_through_the_extremes():
    # extremes (0,1,1), (1,0,1), (1,1,0) span the plane x+y+z = 2
    df = _front_frame([(0, 1, 1), (1, 0, 1), (1, 1, 0), (0.3, 0.3, 0.9), (0.5, 0.5, 0.6)])
    objectives = {"runtime_ms": "minimize", "peak_memory_mb": "minimize", "params": "minimize"}
    # distances (2 - sum) / sqrt(3): p3 0.29, p4 0.23; but p4 is nearer the ideal (0.93 < 0.99)
    assert df.loc[pareto.knee_point(df, objectives), "trial_id"] == "p3"


def test_knee_falls_back_to_nearest_ideal_on_a_straight_front():
    df = _front_frame([(0.0, 1.0), (0.5, 0.5), (1.0, 0.0), (0.25, 0.75)])
    objectives = {"runtime_ms": "minimize", "peak_memory_mb": "minimize"}
    assert df.loc[pareto.knee_point(df, objectives), "trial_id"] == "p1"


def test_knee_respects_directions_and_is_on_the_front():
    df = random_trials(3)
    for objectives in OBJECTIVE_SETS:
        knee = pareto.knee_point(df, objectives)
        assert knee in brute_force_front(df, objectives)
    empty = df.assign(status="failed")
    assert pareto.knee_point(empty, OBJECTIVE_SETS[0]) is None


def test_resolve_objectives_forms_and_errors():
    assert pareto.resolve_objectives("psnr, runtime_ms") == {"psnr": "max", "runtime_ms": "min"}
    assert pareto.resolve_objectives({"ssim": "max", "params": "min"}) == {
        "ssim": "max", "params": "min"}
    assert pareto.resolve_objectives(["psnr_set14"]) == {"psnr_set14": "max"}
    with pytest.raises(InputError, match=r"'runtim_ms' is not a known metric.*did you mean "
                                         r"'runtime_ms'"):
        pareto.resolve_objectives("psnr,runtim_ms")
    with pytest.raises(InputError, match="direction must be max or min"):
        pareto.resolve_objectives({"psnr": "up"})
    with pytest.raises(InputError, match="psnr twice"):
        pareto.resolve_objectives("psnr,psnr")


def test_filter_where_numbers_text_and_errors():
    df = pd.DataFrame({"trial_id": ["a", "b", "c"], "runtime_ms": [10.0, 30.0, np.nan],
                       "params": [100, 200, 300], "anchor": ["", "rlfn", ""],
                       "is_anchor": [False, True, False]})
    assert list(pareto.filter_where(df, "runtime_ms<=30")["trial_id"]) == ["a", "b"]
    assert list(pareto.filter_where(df, "runtime_ms < 30 and params>=100")["trial_id"]) == ["a"]
    assert list(pareto.filter_where(df, "params!=200, anchor==''")["trial_id"]) == ["a", "c"]
    assert list(pareto.filter_where(df, "anchor==rlfn")["trial_id"]) == ["b"]
    assert list(pareto.filter_where(df, "is_anchor==false")["trial_id"]) == ["a", "c"]
    with pytest.raises(InputError, match=r"'runtime' is not a column.*did you mean 'runtime_ms'"):
        pareto.filter_where(df, "runtime<=3")
    with pytest.raises(InputError, match="expected 'column<=number'"):
        pareto.filter_where(df, "runtime_ms ~ 3")
    with pytest.raises(InputError, match="<= needs a number"):
        pareto.filter_where(df, "anchor<=rlfn")


def test_pareto_module_does_not_import_torch():
    import subprocess
    import sys

    code = ("import sys, analysis.pareto, analysis.report, analysis.export, analysis.plots; "
            "print(','.join(m for m in ('torch', 'plotly', 'ray') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
