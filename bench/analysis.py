"""Benchmark: ccai's opinion analysis against red-dwarf's ``run_pipeline`` on the same votes, same run.

Workloads:

* ``process``: whole processes on bowling-green, ``ccai analyze`` (CLI, report included) against a plain
  red-dwarf script (pandas reads the export, ``run_pipeline``, tables written), wall and CPU seconds.
* ``bowling``: the openData conversation american-assembly.bowling-green (2,031 x 896, 225k votes).
* ``mid``: a synthetic conversation of 10,000 x 2,000 with 500k votes (planted groups), small enough for
  red-dwarf's dense matrix, to see how the ratio grows with size.
* ``caps``: a synthetic conversation at Polis's caps (100,000 participants x 10,000 statements, 5M votes)
  with planted opinion groups, to check speed (< 15 s), memory (< 4 GB peak) and recovery (ARI >= 0.95).
* ``certificates``: selection certificates (B = 200 bootstrap re-clusterings) and brigading margins on the
  CCAI consultation under the organisers' rules (goal: B = 200 in <= 30 s on 2 cores).

Each measurement runs in its own subprocess (so peak memory is that run's alone) under a time limit and an
address-space limit; when red-dwarf cannot finish, the report says which of its steps it had reached and why
it stopped. Run it alone on the machine: timings on a busy machine mean little.

    python bench/analysis.py                     # all workloads
    python bench/analysis.py --only process      # whole-process ratio against red-dwarf
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
# Whole process: `ccai analyze` against a plain red-dwarf script, each a fresh Python process

# What someone who uses red-dwarf directly writes: read the export with pandas, run the pipeline, save the
# tables. No figures or report (ccai writes both, so the comparison favours red-dwarf).
REDDWARF_SCRIPT = """
import sys
import pandas as pd
from reddwarf.implementations.base import run_pipeline

folder, out = sys.argv[1], sys.argv[2]
comments = pd.read_csv(folder + "/comments.csv")
matrix = pd.read_csv(folder + "/participants-votes.csv")
ids = [c for c in matrix.columns if c.isdigit()]
long = matrix.melt(id_vars="participant", value_vars=ids, var_name="statement_id", value_name="vote").dropna()
long = long.rename(columns={"participant": "participant_id"})
records = long.astype({"statement_id": int, "vote": int}).to_dict("records")
mod_out = comments.loc[comments["moderated"] == -1, "comment-id"].tolist()
result = run_pipeline(votes=records, mod_out_statement_ids=mod_out, random_state=0)
result.statements_df.to_csv(out + "/statements.csv")
result.participants_df.to_csv(out + "/participants.csv")
"""


def whole_process(folder: Path, repeats: int) -> None:
    """Wall and CPU seconds of whole processes (interpreter start, imports, reading, analysis, writing),
    alternating the two commands ``repeats`` times; prints medians and the ratio."""
    import statistics

    ccai = Path(sys.executable).with_name("ccai")
    times: dict[str, list[tuple[float, float]]] = {"ccai analyze": [], "red-dwarf script": []}
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "reddwarf_plain.py"
        script.write_text(REDDWARF_SCRIPT)
        commands = {
            "ccai analyze": [str(ccai), "analyze", str(folder), "--out", str(Path(tmp) / "ccai")],
            "red-dwarf script": [sys.executable, str(script), str(folder), tmp],
        }
        env = {**os.environ, "COLUMNS": "120"}
        for _ in range(repeats):
            for name, command in commands.items():
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                start = time.perf_counter()
                proc = subprocess.run(command, capture_output=True, text=True, env=env)
                wall = time.perf_counter() - start
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                if proc.returncode:
                    print(f"  {name} failed: {proc.stderr.strip()[-300:]}")
                    return
                cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
                times[name].append((wall, cpu))
    for name, runs in times.items():
        walls, cpus = [w for w, _ in runs], [c for _, c in runs]
        print(
            f"  {name:17s} wall median {statistics.median(walls):5.2f} s (min {min(walls):.2f})   "
            f"CPU median {statistics.median(cpus):5.2f} s (min {min(cpus):.2f})   over {len(runs)} runs"
        )
    ours = times["ccai analyze"]
    theirs = times["red-dwarf script"]
    for what, i in (("wall", 0), ("CPU", 1)):
        ratio = statistics.median(t[i] for t in theirs) / statistics.median(t[i] for t in ours)
        print(f"  ratio     red-dwarf / ccai, whole process, {what}: {ratio:.1f}x (goal >= 3x)")


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
    parser.add_argument(
        "--only", choices=["process", "bowling", "mid", "caps", "certificates"], help="run one workload"
    )
    parser.add_argument("--repeats", type=int, default=3, help="runs of each whole process")
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
    workloads = [args.only] if args.only else ["process", "bowling", "mid", "caps", "certificates"]
    with tempfile.TemporaryDirectory() as tmp:
        for workload in workloads:
            if workload == "process":
                from ccai.datasets import dataset_path

                print(
                    "whole process on bowling-green: `ccai analyze` (report included) vs a plain "
                    "red-dwarf script (no report)",
                    flush=True,
                )
                whole_process(dataset_path("polis-opendata", "american-assembly.bowling-green"), args.repeats)
                continue
            if workload == "certificates":
                certificates_bench(args)
                continue
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


def certificates_bench(args) -> None:
    """Time the selection certificates and brigading margins on the CCAI consultation (in this process)."""
    print("certificates: the CCAI consultation, organisers' rules, threshold 0.723", flush=True)
    from ccai.analysis import analyze
    from ccai.analysis.paper import CCAI_ORGANISER_RULES
    from ccai.analysis.robustness import brigading_margins, selection_certificates, verify_margin
    from ccai.datasets import dataset_path
    from ccai.formats.polis import read_id_list, read_polis_export

    folder = dataset_path("ccai_polis")
    export = read_polis_export(folder)
    options = dict(exclude=read_id_list(folder / "ids-to-toss.csv"), **CCAI_ORGANISER_RULES)
    start = time.perf_counter()
    result = analyze(export.votes, export.statements, **options)
    base = time.perf_counter() - start
    start = time.perf_counter()
    cert = selection_certificates(result, threshold=0.723, n_boot=200, seed=0)
    seconds = time.perf_counter() - start
    p = cert.p_selected
    print(
        f"  one analysis {base:.2f} s; certificates B={cert.n_boot}: {seconds:.2f} s "
        f"({seconds / cert.n_boot * 1000:.0f} ms per resample), goal <= 30 s; "
        f"{int((p >= 0.95).sum())} statements selected in >= 95 % of resamples, "
        f"{int(((p > 0.05) & (p < 0.95)).sum())} uncertain",
        flush=True,
    )
    start = time.perf_counter()
    margins = brigading_margins(result, threshold=0.723)
    seconds = time.perf_counter() - start
    selected = result.eligible_statements()["gac"] >= 0.723
    chosen = margins[selected[selected].index]
    sid = chosen.idxmin()
    start = time.perf_counter()
    verified = verify_margin(
        result, export.votes, export.statements, sid, threshold=0.723, start=int(chosen.min()), **options
    )
    check = time.perf_counter() - start
    print(
        f"  brigading margins (groups fixed) for {len(margins)} statements: {seconds:.3f} s; "
        f"{int(selected.sum())} selected, smallest margin {int(chosen.min())} participants "
        f"(statement {sid}), median {chosen.median():.0f}; re-checked with re-clustering: {verified} "
        f"({check:.1f} s)",
        flush=True,
    )


if __name__ == "__main__":
    main()
