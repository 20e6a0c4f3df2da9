"""Would the same population, asked again, give the same principles? Stability over random parts.

The participants are split at random (seeded) into ``parts`` equal parts (three thirds by default). Each part
is analysed on its own as a new consultation would be: the opinion space and the groups are recomputed (Polis
clustering, k chosen by silhouette, so a part may get another number of groups than the whole). The same
selection rule is applied to the whole and to every part: one consensus threshold (or the threshold that
keeps ``count`` statements of the whole). A principle of the whole *survives* in a part when that part
selects it too.

Reported: per part its k, how many it selects, the share of the whole's principles it keeps (survival) and
the Jaccard overlap; over all parts the share of the whole's principles kept by a majority of parts and by
all of them. With the paper's GAC (a product over groups) a part with fewer groups selects many more
statements at the same threshold, which inflates its survival; the geometric mean does not fall with k, so
the sizes stay comparable and survival means what it says.

Principles are counted as statements: the merge rule proposes no merge among the CCAI statements (see
docs/constitution.md), so each selected statement is one principle before review.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd


@dataclass
class PartFigures:
    part: int
    participants: int
    groups: int
    selected: int
    survival: float  # share of the whole's principles this part selects too
    jaccard: float


@dataclass
class Stability:
    consensus: str
    threshold: float
    whole_groups: int
    whole_selected: int
    parts: list[PartFigures]
    majority_share: float  # share of the whole's principles selected by more than half of the parts
    all_share: float  # ... by every part
    seed: int

    @property
    def mean_survival(self) -> float:
        return float(np.mean([p.survival for p in self.parts]))

    def as_dict(self) -> dict:
        return {**asdict(self), "mean_survival": round(self.mean_survival, 4)}


def _selection_table(votes: pd.DataFrame, statements: pd.DataFrame, seed: int, consensus: str):
    from ccai.analysis import analyze
    from ccai.constitution.select import read_statements, with_consensus

    result = analyze(votes, statements, groups="polis", min_votes=0, seed=seed)
    with tempfile.TemporaryDirectory() as folder:
        result.to_dir(folder)
        table = with_consensus(read_statements(Path(folder)), consensus)
    groups = max((len(g) for g in table["group_agree"]), default=0)
    return table[table["moderated"] >= 1], groups


def participant_stability(
    votes: pd.DataFrame,
    statements: pd.DataFrame,
    *,
    parts: int = 3,
    consensus: str = "geomean",
    threshold: float | None = None,
    count: int | None = None,
    seed: int = 0,
) -> Stability:
    """Split the participants of ``votes`` (columns participant, statement, vote) into ``parts`` random
    parts, analyse each, and measure how many of the whole's selected statements each part selects."""
    if parts < 2:
        raise ValueError(f"parts: need at least 2, got {parts}")
    if (threshold is None) == (count is None):
        raise ValueError("give exactly one of threshold or count")
    people = np.array(sorted(votes["participant"].unique()))
    if len(people) < parts * 10:
        raise ValueError(f"{len(people)} participants are too few for {parts} parts of at least 10")
    whole, whole_k = _selection_table(votes, statements, seed, consensus)
    if count is not None:
        threshold = float(whole["gac"].sort_values(ascending=False).iloc[count - 1])
    assert threshold is not None
    chosen = set(whole.index[whole["gac"] >= threshold])
    if not chosen:
        raise ValueError(f"no statement of the whole reaches {consensus} >= {threshold}")
    shuffled = np.random.default_rng(seed).permutation(people)
    figures, picks = [], []
    for i, members in enumerate(np.array_split(shuffled, parts)):
        table, k = _selection_table(votes[votes["participant"].isin(members)], statements, seed, consensus)
        picked = set(table.index[table["gac"] >= threshold])
        picks.append(picked)
        figures.append(
            PartFigures(
                part=i + 1,
                participants=len(members),
                groups=k,
                selected=len(picked),
                survival=round(len(chosen & picked) / len(chosen), 4),
                jaccard=round(len(chosen & picked) / len(chosen | picked), 4),
            )
        )
    votes_for = {sid: sum(sid in p for p in picks) for sid in chosen}
    return Stability(
        consensus=consensus,
        threshold=round(threshold, 6),
        whole_groups=whole_k,
        whole_selected=len(chosen),
        parts=figures,
        majority_share=round(sum(v > parts / 2 for v in votes_for.values()) / len(chosen), 4),
        all_share=round(sum(v == parts for v in votes_for.values()) / len(chosen), 4),
        seed=seed,
    )
