"""`AnalysisResult`: every intermediate of one analysis, and the files it writes (the output contract).

Keeping every step (matrix, filter report, PCA, projections, base clusters, labels, silhouettes, tables) in
one object lets a reader audit a figure back to the votes, and lets the report, the constitution stage and
the tests read the same numbers. ``to_dir`` writes the contract other stages and outside checks read:
``statements.csv``, ``participants.csv``, ``summary.json`` (plus ``repness.csv`` and ``agreement.csv``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ccai.analysis.consensus import GAC_VARIANTS, gac_variant_name
from ccai.analysis.groups import Clustering, PCAResult, near_ties
from ccai.analysis.matrix import FilterStep, VoteMatrix
from ccai.analysis.paper import CCAI_THRESHOLD


@dataclass
class AnalysisResult:
    """One opinion analysis, every intermediate kept.

    Attributes:
        matrix: the votes after the removal filters (participants x statements).
        filters: each filter in the order applied and what it removed.
        pca: centre, components and explained variance of the PCA.
        clustering: ccai's own base clusters and groups (always computed, also when groups are given).
        participants: one row per input participant (index ``participant_id``): ``n_votes``, ``removed_by``,
            ``clustered`` (passed the vote-count rule), ``in_analysis`` (counted in the statistics), ``group``
            (the labels used), ``ccai_group``, ``given_group``/``polis_group`` when supplied, ``x``, ``y``.
        statements: one row per statement (index ``statement_id``), those nobody voted on included: counts
            overall and per group, the GAC variants, PI variants, projection, extremity, priority;
            ``eligible`` is False for moderated-out, meta, unvoted statements and votes on ids missing from
            the statements table, which never count in summaries or selections; ``status`` says which.
        repness: representative statements per group (Polis's rules).
        consensus: Polis's majority lists: {"agree": [...], "disagree": [...]} of (statement_id, score).
        uncertainty: (statement_id, score) pairs, most uncertain first.
        agreement: ARI and matched share between every pair of labelings (given, polis, ccai).
        group_source: "ccai" (own clustering, Polis mode or forced k) or "given".
        group_names: group label of each ``g<k>_*`` column index k.
        params: the arguments of the run; seed: its seed; input_hash: sha256 of the votes analysed.
        warnings: plain-language warnings about the input (unknown ids, degenerate data).
        about: the conversation's identity (topic, url, description) when known.
        participation: cumulative participants / votes / statements per day, when timestamps exist.
        certificate: selection-certificate and brigading-margin summary (``robustness.certify``), if run.
        topics: one row per topic (``topics.add_topics``), if run; ``statements["topic"]`` then holds each
            statement's topic (-1: not eligible or no text).
        group_summaries: one row per opinion group (``topics.summarize_groups``) when a language model
            wrote cited summaries: group, label, statements shown, summary, sentences kept / dropped.
        replay: with ``history='replay'``, what the replay of updates decided (``ReplayResult.summary``).
    """

    matrix: VoteMatrix
    filters: list[FilterStep]
    pca: PCAResult
    clustering: Clustering
    participants: pd.DataFrame
    statements: pd.DataFrame
    repness: pd.DataFrame
    consensus: dict[str, list[tuple[Any, float]]]
    uncertainty: list[tuple[Any, float]]
    agreement: pd.DataFrame
    group_source: str
    group_names: list
    params: dict[str, Any]
    seed: int
    input_hash: str
    version: str = ""
    warnings: list[str] = field(default_factory=list)
    about: dict[str, str] = field(default_factory=dict)
    participation: pd.DataFrame | None = None
    certificate: dict[str, Any] | None = None
    topics: pd.DataFrame | None = None
    replay: dict[str, Any] | None = None
    group_summaries: pd.DataFrame | None = None

    # -- convenience views --------------------------------------------------------------------------

    @property
    def k(self) -> int:
        """Number of groups used in the statistics."""
        return len(self.group_names)

    @property
    def silhouettes(self) -> dict[int, float]:
        return self.clustering.silhouettes

    @property
    def labels(self) -> pd.Series:
        """Group of each participant in the analysis (index participant_id)."""
        part = self.participants
        return part.loc[part["in_analysis"], "group"]

    def eligible_statements(self) -> pd.DataFrame:
        """Statements that count: not moderated out, not meta."""
        return self.statements[self.statements["eligible"]]

    def group_sizes(self) -> dict[str, int]:
        sizes = self.labels.value_counts()
        return {str(name): int(sizes.get(name, 0)) for name in self.group_names}

    def gac_summary(self, variant: str = "gac") -> dict[str, float]:
        # one column, then the eligible rows (filtering the whole table first copied ~60 columns per call)
        values = self.statements[gac_variant_name(variant)][self.statements["eligible"].to_numpy(bool)]
        if values.empty:
            nan = float("nan")
            return {"mean": nan, "median": nan, "min": nan, "max": nan}
        return {
            "mean": float(values.mean()),
            "median": float(values.median()),
            "min": float(values.min()),
            "max": float(values.max()),
        }

    def summary(self) -> dict[str, Any]:
        """Counts, group sizes, GAC and PI summaries, k and silhouettes, filters, provenance."""
        stm = self.eligible_statements()
        part = self.participants
        return {
            "version": self.version,
            "seed": self.seed,
            "input_hash": self.input_hash,
            "group_source": self.group_source,
            "about": dict(self.about),
            "warnings": list(self.warnings),
            "certificate": self.certificate,
            "topics": None if self.topics is None else self.topics.to_dict(orient="records"),
            "group_summaries": None
            if self.group_summaries is None
            else self.group_summaries.to_dict(orient="records"),
            "counts": {
                "participants_input": int(len(part)),
                "participants_after_filters": int(self.matrix.shape[0]),
                "participants_clustered": int(part["clustered"].sum()),
                "participants_in_analysis": int(part["in_analysis"].sum()),
                "statements_with_votes": int((self.statements["n_seen"] > 0).sum()),
                "statements_without_votes": int((self.statements["n_seen"] == 0).sum()),
                "statements_eligible": int(len(stm)),
                "votes": int(self.matrix.n_votes),
                "votes_in_analysis": int(stm["n_seen"].sum()),
            },
            "k": self.k,
            "group_sizes": self.group_sizes(),
            "group_votes": {
                str(name): int(stm[f"g{k}_seen"].sum()) for k, name in enumerate(self.group_names)
            },
            "ccai_clustering": {
                "k": self.clustering.k,
                "silhouettes": {str(k): v for k, v in self.clustering.silhouettes.items()},
                "n_base_clusters": int(len(self.clustering.base_centers)),
                "near_tie": near_ties(self.clustering.silhouettes, self.clustering.k),
                "replay": self.replay,
            },
            "gac": {name: self.gac_summary(name) for name in GAC_VARIANTS},
            "gac_above_paper_threshold": {
                "threshold": CCAI_THRESHOLD,
                "count": int((stm["gac"] > CCAI_THRESHOLD).sum()),
            },
            "pi_median": {name: float(stm[name].median()) for name in ("pi", "pi_excl_pass", "pi_adjusted")},
            "pca_explained_variance_ratio": [float(v) for v in self.pca.explained_variance_ratio],
            "filters": [step.summary() for step in self.filters],
            "agreement": self.agreement.to_dict(orient="records"),
            "consensus": {side: [int(s) for s, _ in pairs] for side, pairs in self.consensus.items()},
            "uncertainty": [int(s) for s, _ in self.uncertainty],
            "params": self.params,
        }

    # -- output contract ----------------------------------------------------------------------------

    def statements_csv(self) -> pd.DataFrame:
        front = [
            "text",
            "moderated",
            "n_seen",
            "n_agree",
            "n_disagree",
            "n_pass",
            *GAC_VARIANTS,
            "pi",
            "pi_excl_pass",
            "pi_adjusted",
            "extremity",
            "x",
            "y",
            "priority",
        ]
        per_group = [f"g{k}_{c}" for k in range(self.k) for c in ("agree", "disagree", "pass", "seen")]
        rest = [c for c in self.statements.columns if c not in front and c not in per_group]
        table = self.statements[front + per_group + rest].copy()
        table.index.name = "statement_id"
        return table.reset_index()

    def participants_csv(self) -> pd.DataFrame:
        front = ["n_votes", "in_analysis", "group", "x", "y"]
        rest = [c for c in self.participants.columns if c not in front]
        table = self.participants[front + rest].copy()
        table.index.name = "participant_id"
        return table.reset_index()

    def to_dir(self, out: Path | str) -> list[Path]:
        """Write statements.csv, participants.csv, repness.csv, agreement.csv and summary.json into ``out``.

        Each file is written to a temporary name and renamed, so a reader never sees half a file.
        """
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for name, frame in (
            ("statements.csv", self.statements_csv()),
            ("participants.csv", self.participants_csv()),
            ("repness.csv", self.repness),
            ("agreement.csv", self.agreement),
            *((("topics.csv", self.topics),) if self.topics is not None else ()),
            *((("group_summaries.csv", self.group_summaries),) if self.group_summaries is not None else ()),
        ):
            written.append(_atomic(out / name, lambda path, f=frame: f.to_csv(path, index=False)))
        text = json.dumps(_plain(self.summary()), indent=2) + "\n"
        written.append(_atomic(out / "summary.json", lambda path: path.write_text(text)))
        return written

    def save(
        self,
        out: Path | str,
        *,
        inputs: Iterable[Path] = (),
        config: dict[str, Any] | None = None,
        report: Callable[[AnalysisResult, Path], Any] | None = None,
    ):
        """``to_dir`` inside a self-describing run directory (config.yaml, manifest.json with input hashes,
        versions and seed, log.jsonl). ``report``: a writer called as ``report(result, path)`` that adds
        report.html, e.g. :func:`ccai.analysis.report.write_report` or ``report_writer(paper=CCAI_PAPER)``;
        taking the writer as an argument keeps this module free of the report's imports (no import
        circle). Returns the finished :class:`ccai.manifest.RunDir`."""
        from ccai.manifest import RunDir

        if report is not None and not callable(report):
            raise TypeError(
                f"save(report=...) takes a writer such as ccai.analysis.report.write_report, not {report!r}"
            )
        out = Path(out)
        if out.exists() and not out.is_dir():
            raise ValueError(f"{out}: exists and is not a folder; choose another output folder")
        run = RunDir.create(out, config or self.params, seed=self.seed, inputs=inputs, stage="analysis")
        for step in self.filters:
            run.log("filter", **step.summary())
        self.to_dir(run.path)
        if report is not None:
            report(self, run.path / "report.html")
            run.log("report", path="report.html")
        run.finish(input_hash=self.input_hash, k=self.k)
        return run


def _atomic(target: Path, write) -> Path:
    tmp = target.with_name(target.name + ".tmp")
    write(tmp)
    tmp.replace(target)
    return target


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float | np.floating):
        return None if np.isnan(value) else float(value)
    if isinstance(value, np.integer | np.bool_):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return value
