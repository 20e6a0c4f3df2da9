"""k and clustered-set agreement with Polis's published groups, batch and replay, on every openData
conversation that has groups (the table in docs/analysis.md).

    CCAI_DATA_DIR=../shared/data python bench/polis_agreement.py [--tick 60] [--only NAME ...]

For each conversation: Polis's k (its participants-votes.csv ``group-id``), ccai's k chosen freely with the
default batch rule and with ``history='replay'`` (votes replayed through updates of ``--tick`` seconds: sticky
in-conv set and Polis's k smoother), the ARI against Polis's groups, the silhouette gap between the best and
the second-best k, and how the clustered set differs from Polis's grouped set ("+a/-b": a extra, b missing).
Replay needs votes.csv (timestamps); three conversations in the project copy have none.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from threadpoolctl import threadpool_limits

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parents[1] / "src"))

from ccai.analysis import analyze  # noqa: E402
from ccai.analysis.groups import near_ties  # noqa: E402
from ccai.formats.polis import read_polis_export  # noqa: E402


def set_diff(result, polis) -> str:
    part = result.participants
    mine = set(part.index[part["clustered"]])
    theirs = set(polis.dropna().index)
    if mine == theirs:
        return "="
    return f"+{len(mine - theirs)}/−{len(theirs - mine)}"


def describe(result, polis) -> dict:
    sil = result.clustering.silhouettes
    ranked = sorted(sil.values(), reverse=True)
    gap = ranked[0] - ranked[1] if len(ranked) > 1 else float("nan")
    ari = result.agreement.set_index(["a", "b"]).loc[("polis", "ccai"), "ari"]
    ties = near_ties(sil, result.clustering.k)
    return {
        "k": result.clustering.k,
        "ari": float(ari),
        "gap": gap,
        "tie": ",".join(f"k={k}" for k in ties) or "–",
        "set": set_diff(result, polis),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tick", type=float, default=60.0, help="seconds per replayed update (default 60)")
    parser.add_argument("--only", nargs="*", default=None, help="conversation folder names")
    args = parser.parse_args()
    root = Path(os.environ.get("CCAI_DATA_DIR", HERE.parents[2] / "shared" / "data")) / "polis-opendata"
    names = args.only or sorted(p.name for p in root.iterdir() if p.is_dir())
    print(
        "| conversation | k Polis | batch k | batch ARI | gap | near tie | batch set | replay k "
        "(last best) | replay ARI | replay set | updates, clustered | replay s |"
    )
    print("|" + "---|" * 12)
    totals = {"batch_k": 0, "replay_k": 0, "batch_set": 0, "replay_set": 0, "n": 0, "n_replay": 0}
    with threadpool_limits(limits=1):
        for name in names:
            export = read_polis_export(root / name)
            polis = export.participants["group_id"]
            if not polis.notna().any():
                continue
            k_polis = int(polis.dropna().nunique())
            batch = describe(analyze(export.votes, export.statements, reference_groups=polis), polis)
            totals["n"] += 1
            totals["batch_k"] += batch["k"] == k_polis
            totals["batch_set"] += batch["set"] == "="
            row = (
                f"| {name} | {k_polis} | {batch['k']} | {batch['ari']:.3f} | {batch['gap']:.3f} | "
                f"{batch['tie']} | {batch['set']} |"
            )
            if export.vote_log is None:
                print(row + " no votes.csv | | | | |", flush=True)
                continue
            started = time.perf_counter()
            result = analyze(
                export.vote_log,
                export.statements,
                reference_groups=polis,
                history="replay",
                tick_seconds=args.tick,
            )
            seconds = time.perf_counter() - started
            info = result.replay
            replay = describe(result, polis)
            if not info["k_decided"]:
                replay["k"] = f"{replay['k']}?"
            totals["n_replay"] += 1
            totals["replay_k"] += replay["k"] == k_polis
            totals["replay_set"] += replay["set"] == "="
            print(
                row + f" {replay['k']} ({info['last_update_best_k']}) | {replay['ari']:.3f} | "
                f"{replay['set']} | {info['updates']:,}, {info['updates_clustered']} | {seconds:.1f} |",
                flush=True,
            )
    print(
        f"\nk equal to Polis's: batch {totals['batch_k']}/{totals['n']}, replay {totals['replay_k']}/"
        f"{totals['n_replay']} (of the {totals['n_replay']} with votes.csv); clustered set equal: batch "
        f"{totals['batch_set']}/{totals['n']}, replay {totals['replay_set']}/{totals['n_replay']} "
        f"(tick {args.tick:g} s)"
    )


if __name__ == "__main__":
    main()
