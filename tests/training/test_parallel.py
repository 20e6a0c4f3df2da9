"""Side-by-side runs: how many at once, results in order, errors kept, progress read from run folders."""

from __future__ import annotations

import json
import os

import pytest

from ccai.training import parallel
from ccai.training.parallel import plan_jobs, run_side_by_side, run_status


def _square_or_fail(x: int) -> int:
    if x < 0:
        raise ValueError(f"negative input {x}")
    return x * x


def _pid(_: int) -> int:
    return os.getpid()


def test_jobs_follow_cores_memory_and_device(monkeypatch):
    monkeypatch.setattr(parallel, "cpu_count", lambda: 2)
    monkeypatch.setattr(parallel, "available_memory", lambda: 64 * 1024**3)
    assert plan_jobs(2, "cpu") == 2 and plan_jobs(5, "cpu") == 2 and plan_jobs(1, "cpu") == 1
    assert plan_jobs(2, "cuda") == 1 and plan_jobs(2, "cuda", jobs=2) == 2
    assert plan_jobs(2, "cpu", jobs=8) == 2  # never more processes than runs
    monkeypatch.setattr(parallel, "available_memory", lambda: 7 * 1024**3)
    assert plan_jobs(2, "cpu") == 1  # one SmolLM2 run's peak fits, two do not
    monkeypatch.setattr(parallel, "cpu_count", lambda: 8)
    assert parallel.threads_per_job(2) == 4 and parallel.threads_per_job(16) == 1
    with pytest.raises(ValueError, match="--jobs"):
        plan_jobs(2, "cpu", jobs=0)


def test_runs_go_in_separate_processes_and_keep_their_order():
    calls = [((x,), {}) for x in (3, 1, 2)]
    assert run_side_by_side(_square_or_fail, calls, jobs=2) == [9, 1, 4]
    pids = run_side_by_side(_pid, [((0,), {}), ((1,), {})], jobs=2)
    assert os.getpid() not in pids


def test_a_failing_run_does_not_stop_the_others_and_its_error_comes_back():
    with pytest.raises(ValueError, match="negative input -1"):
        run_side_by_side(_square_or_fail, [((-1,), {}), ((2,), {})], jobs=2)


def test_status_is_read_from_the_run_folder(tmp_path):
    assert run_status(tmp_path) == (0, "starting")
    state = {"done": {"split": {}, "sl_data": {}}, "chunks": {"sl_data": [16, 16, 16, 16, 16]}}
    (tmp_path / "state.json").write_text(json.dumps(state))
    assert run_status(tmp_path) == (2, "SL-CAI fine-tuning")
    state["done"] = {"split": {}}
    (tmp_path / "state.json").write_text(json.dumps(state))
    assert run_status(tmp_path) == (1, "SL-CAI data (chunk 6)")
    state["done"] = dict.fromkeys(parallel.STEP_LABELS, {})
    (tmp_path / "state.json").write_text(json.dumps(state))
    assert run_status(tmp_path) == (len(parallel.STEP_LABELS), "done")
