"""`nas launch` as a user runs it (subprocesses): kill -9 then --resume; an existing Ray cluster
(--address); a PostgreSQL study (--storage); a wall-clock budget. About a minute each; part of
the default run because they are what the launcher promises (markers ray/postgres select parts).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import pandas as pd
import pytest
import yaml

from nas.launcher import rdb_url
from tests.nas.conftest import tiny_config

DETERMINISTIC = {"psnr": "max", "params": "min"}
PG_PASSWORD = "S3cret-pw-7f1d"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(tmp_path: Path) -> dict:
    return {**os.environ, "ESRNAS_LOCK_DIR": str(tmp_path / "locks"), "PYTHONUNBUFFERED": "1"}


def _nas(args: list[str], tmp_path: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nas.cli", "launch", "--quiet", *args],
                          cwd=tmp_path, env=env or _env(tmp_path), capture_output=True, text=True,
                          timeout=600)


def _config_file(tmp_path: Path, **overrides) -> Path:
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump(tiny_config(objectives=DETERMINISTIC, **overrides),
                                   sort_keys=False))
    return path


def _study(run: Path, storage: str | None = None) -> optuna.Study:
    state = json.loads((run / "state.json").read_text())
    return optuna.load_study(study_name=state["study_name"],
                             storage=storage or f"sqlite:///{run / 'study.db'}")


def _finished(run: Path) -> pd.DataFrame:
    if not (run / "trials.csv").is_file():
        return pd.DataFrame(columns=["status"])
    df = pd.read_csv(run / "trials.csv")
    return df[df["status"] != "running"]


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT, signal.SIGTERM],
                         ids=["kill-9", "ctrl-c", "sigterm"])
def test_stop_then_resume_keeps_every_completed_trial(tmp_path, sig):
    cfg = _config_file(tmp_path, anchors=["srn_s_ntire23"])
    run, stderr = tmp_path / "run", tmp_path / "stderr.txt"
    proc = subprocess.Popen(
        [sys.executable, "-m", "nas.cli", "launch", "--quiet", "--config", str(cfg),
         "--budget", "5", "--out", str(run)], cwd=tmp_path, env=_env(tmp_path),
        stdout=subprocess.PIPE, stderr=stderr.open("w"), text=True)
    deadline = time.monotonic() + 400
    try:  # stop the driver while a trial is running, after at least 2 finished
        while time.monotonic() < deadline:
            df = pd.read_csv(run / "trials.csv") if (run / "trials.csv").is_file() else None
            if df is not None and (df["status"] != "running").sum() >= 2 and \
                    (df["status"] == "running").any():
                break
            assert proc.poll() is None, "the search ended before it could be killed"
            time.sleep(0.2)
        os.kill(proc.pid, sig)
        stdout, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    if sig != signal.SIGKILL:  # a clean stop (SIGTERM as Ctrl-C): the unfinished trial is dropped
        assert proc.returncode == 130, stderr.read_text()[-3000:]
        assert f"continue with `nas launch --resume {run}`" in stdout
        assert "running" not in set(pd.read_csv(run / "trials.csv")["status"])
        assert "SIGTERM received" not in stderr.read_text()  # no Ray C++ stack dump
    before = _finished(run).set_index("trial_id")
    assert len(before) >= 2

    out = _nas(["--resume", str(run)], tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    df = pd.read_csv(run / "trials.csv")
    assert df["trial_id"].is_unique and set(df["status"]) == {"completed"}
    assert (~df["is_anchor"]).sum() == 5 and df["is_anchor"].sum() == 1  # total == budget
    after = df.set_index("trial_id")
    for tid, row in before.iterrows():  # kept as they were, not re-run
        assert after.loc[tid, "psnr"] == row["psnr"] and after.loc[tid, "status"] == row["status"]
        assert after.loc[tid, "finished_at"] == row["finished_at"]
    assert sorted(df["number"]) == sorted(set(df["number"]))
    trials = _study(run).trials
    states = [t.state.name for t in trials]
    assert states.count("COMPLETE") == 5 and "RUNNING" not in states  # lost ones: FAIL
    kept = {t.user_attrs.get("trial_id") for t in trials if t.state.name == "COMPLETE"}
    assert kept == set(df.loc[~df["is_anchor"], "trial_id"])
    state = json.loads((run / "state.json").read_text())
    assert [s.get("resumed") for s in state["sessions"]] == [False, True]
    assert sorted(p.name for p in (run / "trials").iterdir()) == sorted(df["trial_id"])


@pytest.mark.ray
def test_search_on_an_existing_ray_cluster(tmp_path):
    port = _free_port()
    temp_dir = Path(tempfile.mkdtemp(prefix="rayt", dir="/tmp"))  # short: socket path limit
    ray_bin = Path(sys.executable).parent / "ray"
    # --block keeps `ray start` in the foreground: stopping that process stops this cluster
    # (and only it; `ray stop` would stop every Ray instance of the machine).
    # a loopback test cluster: no token authentication (head and client agree on it)
    env = {**_env(tmp_path), "RAY_AUTH_MODE": "disabled"}
    head = subprocess.Popen(
        [str(ray_bin), "start", "--head", f"--port={port}", "--num-cpus=2",
         "--include-dashboard=false", f"--temp-dir={temp_dir}", "--block"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        address = f"127.0.0.1:{port}"
        out = _nas(["--config", str(_config_file(tmp_path)), "--budget", "2", "--out", "run",
                    "--address", address], tmp_path, env=env)
        assert out.returncode == 0, out.stderr[-3000:]
        df = pd.read_csv(tmp_path / "run" / "trials.csv")
        assert list(df["status"]) == ["completed", "completed"]
        assert all(t.state.name == "COMPLETE" for t in _study(tmp_path / "run").trials)
    finally:
        head.send_signal(signal.SIGTERM)
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            head.kill()
        shutil.rmtree(temp_dir, ignore_errors=True)


def _as_postgres(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    """PostgreSQL refuses to run as root: run its tools as the postgres user then."""
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=120, **kw)


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    return str(candidates[-1]) if candidates else None


@pytest.mark.postgres
def test_search_with_a_postgresql_study(tmp_path):
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if initdb is None or pg_ctl is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not installed; .ci/setup "
                    "installs Debian's postgresql package")
    pytest.importorskip("psycopg2", reason="psycopg2 (the PostgreSQL driver) not installed")
    root = Path(tempfile.mkdtemp(prefix="esrnas-pg-", dir="/tmp"))
    data = root / "data"
    root.chmod(0o755)
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    port = _free_port()
    (root / "pw").write_text(PG_PASSWORD + "\n")
    (root / "pw").chmod(0o644)
    _as_postgres([initdb, "-D", str(data), "-U", "postgres", "--auth=scram-sha-256",
                  f"--pwfile={root / 'pw'}", "-E", "UTF8"])
    _as_postgres([pg_ctl, "-D", str(data), "-w", "-l", str(root / "log"), "-o",
                  f"-p {port} -k {root} -c listen_addresses=127.0.0.1", "start"])
    try:
        url = f"postgresql://postgres:{PG_PASSWORD}@127.0.0.1:{port}/postgres"
        out = _nas(["--config", str(_config_file(tmp_path)), "--budget", "2", "--out", "run",
                    "--storage", url], tmp_path)
        assert out.returncode == 0, out.stderr[-3000:]
        assert not (tmp_path / "run" / "study.db").exists()
        # readable by optuna.load_study (with the installed PostgreSQL driver in the URL)
        study = _study(tmp_path / "run", storage=rdb_url(url))
        assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE"]
        df = pd.read_csv(tmp_path / "run" / "trials.csv")
        assert sorted(t.values[0] for t in study.trials) == pytest.approx(sorted(df["psnr"]))
        # the password is in no file of the run and in no output; a resumed run gets it from
        # libpq's PGPASSWORD, as the README says
        assert PG_PASSWORD not in out.stdout + out.stderr
        state = json.loads((tmp_path / "run" / "state.json").read_text())
        assert state["storage"] == f"postgresql://postgres@127.0.0.1:{port}/postgres"
        more = _nas(["--resume", "run", "--budget", "3"], tmp_path,
                    env={**_env(tmp_path), "PGPASSWORD": PG_PASSWORD})
        assert more.returncode == 0, more.stderr[-3000:]
        assert len(_study(tmp_path / "run", storage=rdb_url(url)).trials) == 3
        assert PG_PASSWORD not in more.stdout + more.stderr
        leaks = [p for p in (tmp_path / "run").rglob("*")
                 if p.is_file() and PG_PASSWORD.encode() in p.read_bytes()]
        assert leaks == []
    finally:
        _as_postgres([pg_ctl, "-D", str(data), "-m", "fast", "stop"])
        shutil.rmtree(root, ignore_errors=True)


def test_wall_clock_budget_stops_the_search_and_settles_running_trials(tmp_path):
    t0 = time.monotonic()
    out = _nas(["--config", str(_config_file(tmp_path)), "--budget", "30s", "--out", "run"],
               tmp_path)
    wall = time.monotonic() - t0
    assert out.returncode == 0, out.stderr[-3000:]
    assert "budget 30 s wall clock" in out.stdout
    df = pd.read_csv(tmp_path / "run" / "trials.csv")
    assert (df["status"] == "completed").sum() >= 1 and "running" not in set(df["status"])
    stopped = df[df["status"] == "pruned"]
    assert all(stopped["reason"] == "stopped: wall-clock budget reached")
    assert wall < 30 + 60  # Ray start-up and shutdown on top of the budget
    states = [t.state.name for t in _study(tmp_path / "run").trials]
    assert "RUNNING" not in states and states.count("COMPLETE") == (df["status"] ==
                                                                   "completed").sum()
