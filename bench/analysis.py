"""Benchmark: ccai's opinion analysis against red-dwarf's ``run_pipeline`` on the same votes, same run.

Three workloads:

* ``bowling``: the openData conversation american-assembly.bowling-green (2,031 x 896, 225k votes).
* ``mid``: a synthetic conversation of 10,000 x 2,000 with 500k votes (planted groups), small enough for
  red-dwarf's dense matrix, to see how the ratio grows with size.
* ``caps``: a synthetic conversation at Polis's caps (100,000 participants x 10,000 statements, 5M votes)
  with planted opinion groups, to check speed (< 15 s), memory (< 4 GB peak) and recovery (ARI >= 0.95).

Each measurement runs in its own subprocess (so peak memory is that run's alone) under a time limit and an
address-space limit; when red-dwarf cannot finish, the report says which of its steps it had reached and why
it stopped. Run it alone on the machine: timings on a busy machine mean little.

    python bench/analysis.py                     # all workloads
    python bench/analysis.py --only bowling      # quick
    python bench/analysis.py --only caps --reddwarf-timeout 120 --memory-limit-gb 8
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()

# ---------------------------------------------------------------------------------------------------------
# Workloads


def bowling_votes():
    from ccai.datasets import dataset_path
    from ccai.formats.polis import read_polis_export

    export = read_polis_export(dataset_path("polis-opendata", "american-assembly.bowling-green"))
    return export.votes, export.statements, None


def planted_votes(n_participants: int, n_statements: int, n_votes: int, seed: int = 0):
    """Votes of participants in 3 camps (50/30/20 %), each camp leaning its own way on every statement."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    camp = rng.choice(3, size=n_participants, p=[0.5, 0.3, 0.2])
    stance = rng.choice(np.array([-1, 1], np.int8), size=(3, n_statements))
    cells = rng.integers(0, n_participants * n_statements, size=int(n_votes * 1.05), dtype=np.int64)
    cells = np.unique(cells)
    cells = rng.permutation(cells)[:n_votes]
    p, s = np.divmod(cells, n_statements)
    lean = stance[camp[p], s]
    draw = rng.random(len(cells))
    agree_p = np.where(lean > 0, 0.8, 0.15)
    vote = np.where(draw < agree_p, 1, np.where(draw < agree_p + 0.1, 0, -1)).astype(np.int8)
    votes = pd.DataFrame({"participant": p, "statement": s, "vote": vote})
    return votes, None, pd.Series(camp, index=np.arange(n_participants))


# ---------------------------------------------------------------------------------------------------------
# Workers (run in a subprocess)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def stage(name: str) -> None:
    """Tell the parent which step is running (it reports the last one if the worker dies)."""
    print(json.dumps({"stage": name, "t": time.perf_counter(), "rss_mb": peak_rss_mb()}), flush=True)


def load(workload: str, args) -> tuple:
    """The workload's votes: the real export, or the synthetic votes the parent saved for the workers."""
    if workload == "bowling":
        return bowling_votes()
    import numpy as np
    import pandas as pd

    data = np.load(args.cache)
    votes = pd.DataFrame({"participant": data["p"], "statement": data["s"], "vote": data["v"]})
    return votes, None, pd.Series(data["camp"])


def worker_ccai(args) -> dict:
    from sklearn.metrics import adjusted_rand_score

    from ccai.analysis import analyze

    votes, statements, camp = load(args.workload, args)
    before = peak_rss_mb()
    stage("analyze")
    start = time.perf_counter()
    result = analyze(votes, statements, seed=0)
    seconds = time.perf_counter() - start
    out = {
        "seconds": seconds,
        "peak_rss_mb": peak_rss_mb(),
        "rss_before_mb": before,
        "k": result.k,
        "n_votes": int(result.matrix.n_votes),
        "shape": list(result.matrix.shape),
    }
    if camp is not None:
        labels = result.labels
        out["ari_planted"] = float(adjusted_rand_score(camp.reindex(labels.index), labels.astype(int)))
    return out


def worker_reddwarf(args) -> dict:
    import reddwarf.implementations.base as base

    votes, statements, _ = load(args.workload, args)
    mod_out = []
    if statements is not None:
        mod_out = statements.index[(statements["moderated"] == -1) | statements["is_meta"]].tolist()
    records = [
        {"participant_id": int(p), "statement_id": int(s), "vote": int(v)}
        for p, s, v in zip(votes["participant"], votes["statement"], votes["vote"], strict=True)
    ]
    del votes
    for name in (
        "generate_raw_matrix",
        "simple_filter_matrix",
        "run_reducer",
        "get_clusterable_participant_ids",
        "run_clusterer",
        "calculate_comment_statistics_dataframes",
        "populate_priority_calculations_into_statements_df",
        "select_consensus_statements",
        "select_representative_statements",
    ):
        if hasattr(base, name):
            setattr(base, name, _announce(name, getattr(base, name)))
    before = peak_rss_mb()
    stage("run_pipeline")
    start = time.perf_counter()
    result = base.run_pipeline(votes=records, mod_out_statement_ids=mod_out, random_state=0)
    seconds = time.perf_counter() - start
    k = int(result.participants_df["cluster_id"].dropna().nunique())
    return {"seconds": seconds, "peak_rss_mb": peak_rss_mb(), "rss_before_mb": before, "k": k}


def _announce(name, function):
    def wrapped(*args, **kwargs):
        stage(name)
        return function(*args, **kwargs)

    return wrapped


# ---------------------------------------------------------------------------------------------------------
# Parent


def run_worker(engine: str, workload: str, args, timeout: float) -> dict:
    """Run one measurement in a subprocess; return its figures or how far it got."""
    command = [
        sys.executable,
        str(HERE),
        "--worker",
        engine,
        "--workload",
        workload,
        "--cache",
        getattr(args, "cache", ""),
        "--memory-limit-gb",
        str(args.memory_limit_gb),
    ]
    start = time.perf_counter()
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        stdout, stderr, code = proc.stdout, proc.stderr, proc.returncode
        why = None if code == 0 else f"exit code {code}"
    except subprocess.TimeoutExpired as exc:
        stdout = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        stderr = exc.stderr.decode() if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        why = f"timed out after {timeout:.0f} s"
    elapsed = time.perf_counter() - start
    stages, result = [], None
    for line in stdout.splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if "stage" in record:
            stages.append(record)
        elif "result" in record:
            result = record["result"]
    if result is not None and why is None:
        return {"ok": True, **result}
    why = why or "the worker printed no result"
    last_error = next((line for line in reversed(stderr.strip().splitlines()) if line.strip()), "")
    if "MemoryError" in stderr or "Unable to allocate" in stderr:
        why = f"out of memory under the {args.memory_limit_gb:g} GB limit ({last_error[:160]})"
    elif why and why.startswith("exit") and last_error:
        why = f"{why}: {last_error[:200]}"
    reached = stages[-1]["stage"] if stages else "loading"
    since = (stages[-1]["t"] - stages[0]["t"]) if len(stages) > 1 else 0.0
    return {
        "ok": False,
        "why": why,
        "reached": reached,
        "steps": [s["stage"] for s in stages],
        "elapsed": elapsed,
        "seconds_into_pipeline": since,
        "peak_rss_mb_seen": max((s["rss_mb"] for s in stages), default=0.0),
    }


def describe(name: str, figures: dict) -> str:
    if figures["ok"]:
        extra = f", ARI vs planted {figures['ari_planted']:.3f}" if "ari_planted" in figures else ""
        return (
            f"  {name:9s} {figures['seconds']:8.2f} s   peak RSS {figures['peak_rss_mb'] / 1024:5.2f} GB "
            f"(inputs {figures['rss_before_mb'] / 1024:4.2f} GB)   k={figures['k']}{extra}"
        )
    return (
        f"  {name:9s} did not finish: {figures['why']}; it had reached {figures['reached']} "
        f"(steps: {' > '.join(figures['steps']) or '-'})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", choices=["bowling", "mid", "caps"], help="run one workload")
    parser.add_argument("--participants", type=int, default=100_000)
    parser.add_argument("--statements", type=int, default=10_000)
    parser.add_argument("--votes", type=int, default=5_000_000)
    parser.add_argument("--reddwarf-timeout", type=float, default=300.0, help="seconds per red-dwarf run")
    parser.add_argument("--ccai-timeout", type=float, default=300.0)
    parser.add_argument("--memory-limit-gb", type=float, default=8.0, help="address-space limit per run")
    parser.add_argument("--skip-reddwarf", action="store_true")
    parser.add_argument("--worker", choices=["ccai", "reddwarf"], help=argparse.SUPPRESS)
    parser.add_argument("--workload", help=argparse.SUPPRESS)
    parser.add_argument("--cache", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    if args.worker:
        limit = int(args.memory_limit_gb * 1024**3)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        figures = worker_ccai(args) if args.worker == "ccai" else worker_reddwarf(args)
        print(json.dumps({"result": figures}), flush=True)
        return

    sizes = {"mid": (10_000, 2_000, 500_000), "caps": (args.participants, args.statements, args.votes)}
    workloads = [args.only] if args.only else ["bowling", "mid", "caps"]
    with tempfile.TemporaryDirectory() as tmp:
        for workload in workloads:
            if workload in sizes:
                import numpy as np

                n, m, n_votes = sizes[workload]
                votes, _, camp = planted_votes(n, m, n_votes)
                args.cache = str(Path(tmp) / f"{workload}.npz")
                np.savez(
                    args.cache,
                    p=votes["participant"].to_numpy(),
                    s=votes["statement"].to_numpy(),
                    v=votes["vote"].to_numpy(),
                    camp=camp.to_numpy(),
                )
                title = f"{workload}: synthetic {n:,} x {m:,}, {len(votes):,} votes, 3 planted groups"
                del votes, camp
            else:
                title = "bowling-green: 2,031 x 896, 225k votes (openData)"
            print(title, flush=True)
            ours = run_worker("ccai", workload, args, args.ccai_timeout)
            print(describe("ccai", ours), flush=True)
            if args.skip_reddwarf:
                continue
            theirs = run_worker("reddwarf", workload, args, args.reddwarf_timeout)
            print(describe("red-dwarf", theirs), flush=True)
            if ours["ok"] and theirs["ok"]:
                print(
                    f"  ratio     red-dwarf / ccai = {theirs['seconds'] / ours['seconds']:.1f}x", flush=True
                )
            elif ours["ok"] and theirs["why"].startswith("timed out"):
                bound = theirs["elapsed"] / ours["seconds"]
                print(f"  ratio     > {bound:.0f}x (red-dwarf stopped by the time limit)", flush=True)
            elif ours["ok"]:
                print("  ratio     none: red-dwarf cannot run this size within the memory limit", flush=True)


if __name__ == "__main__":
    main()
