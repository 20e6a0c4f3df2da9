"""The analysis stage's one entry, ``run(config, inputs, out)``: ``ccai analyze`` and ``ccai study`` call it.

Why one entry: a stage run from its own command and from the whole study must write the same folder (same
files, same numbers), so both call this function and only their argument parsing differs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from ccai.analysis.paper import CCAI_THRESHOLD
from ccai.analysis.result import AnalysisResult
from ccai.config import StageConfig


class AnalysisConfig(StageConfig):
    """How to read the export and analyse it (defaults: Polis's rules; the demo sets the CCAI organisers')."""

    groups: str | int = Field("polis", description="'polis' (k by silhouette), 'given', 'hdbscan', or k")
    exclude: str | None = Field(None, description="participant ids to drop: a file, or a file in the export")
    min_votes: int = Field(7, ge=0, description="Polis: cluster those with >= min(N, statements) votes")
    more_than: int | None = Field(None, ge=0, description="keep only participants with more than N votes")
    moderation: Literal["polis", "accepted", "none"] = "polis"
    straightliners: bool = Field(False, description="drop participants who voted one way on >= 5 statements")
    comments: str | None = Field(None, description="a file to read instead of comments.csv")
    participants_votes: str | None = Field(None, description="a file instead of participants-votes.csv")
    given_file: str | None = Field(None, description="CSV of participant + group for groups=given")
    given_column: str | None = None
    certificates: int = Field(0, ge=0, description="bootstrap resamples for selection certificates (200)")
    threshold: float = Field(CCAI_THRESHOLD, gt=0, le=1, description="GAC threshold the certificates test")
    topics: int | None = Field(None, description="group statements into N topics (-1: choose N)")
    lm: str | None = Field(None, description="a model that summarises each group (and topic), cited")
    history: Literal["batch", "replay"] = Field(
        "batch", description="'replay': votes replayed over updates (Polis's sticky in-conv set, k smoother)"
    )
    tick_seconds: float = Field(60.0, gt=0, description="with history=replay: seconds per update")

    @field_validator("lm")
    @classmethod
    def _lm_spec(cls, value: str | None) -> str | None:
        # checked before the export is read: a malformed spec would otherwise fail after the analysis ran
        if value and value.startswith("openai:"):
            url, _, model = value[len("openai:") :].partition("#")
            if not url.startswith(("http://", "https://")) or not model:
                raise ValueError(f"expected openai:<http(s) base_url>#<model name>, got {value!r}")
        return value


def run(
    config: AnalysisConfig,
    inputs: Path | str,
    out: Path | str,
    *,
    step: Callable[[str], None] | None = None,
) -> AnalysisResult:
    """Analyse the Polis export folder ``inputs`` into the run folder ``out`` (report included).

    ``step(label)`` is told when each phase starts (the CLI draws it as a progress bar).
    """
    from ccai.analysis import analyze
    from ccai.analysis.pipeline import parse_groups
    from ccai.formats.polis import MATRIX_A, MATRIX_B, read_id_list, read_polis_export

    step = step or (lambda label: None)
    folder = Path(inputs)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out}: exists and is not a folder; choose another output folder")
    groups = str(config.groups)
    parse_groups(groups)  # a typo in groups fails before the export is read
    exclude = _in_export(config.exclude, folder)
    given_file = Path(config.given_file) if config.given_file else None
    excluded = read_id_list(exclude) if exclude is not None else []
    given = read_given(given_file, config.given_column) if given_file is not None else None

    step("reading the export")
    export = read_polis_export(folder, comments=config.comments, participants_votes=config.participants_votes)
    export_groups = export.participants["group_id"]
    if groups.strip().lower() == "given" and given is None:
        if export_groups.dropna().empty:
            raise ValueError(
                f"{folder}: groups=given needs a group-id column in the participants file or a given_file"
            )
        given = export_groups
    reference, labelings = export_groups, None
    if config.participants_votes is not None:
        # A replacement matrix (e.g. clean_votes.csv) carries someone's labels, not Polis's: compare them,
        # and take Polis's own group-id from the folder's standard matrix.
        if given is not export_groups:
            labelings = {"file_group_id": export_groups}
        reference = None
        for name in (MATRIX_A, MATRIX_B):
            if (folder / name).is_file():
                polis = read_polis_export(folder, participants_votes=name).participants["group_id"]
                reference = None if polis.dropna().empty else polis
                break

    step("analysing (PCA, groups, statistics)")
    if config.history == "replay" and export.vote_log is None:
        raise ValueError(f"{folder}: history=replay needs votes.csv (every vote with its timestamp)")
    votes = export.vote_log if config.history == "replay" else export.votes
    result = analyze(
        votes,
        export.statements,
        groups=config.groups,
        given_groups=given,
        reference_groups=reference,
        labelings=labelings,
        about=export.summary,
        exclude=excluded,
        min_votes=config.min_votes,
        more_than=config.more_than,
        moderation=config.moderation,
        straightliners=config.straightliners,
        seed=config.seed,
        history=config.history,
        tick_seconds=config.tick_seconds,
    )
    if config.certificates > 0:
        from ccai.analysis.robustness import certify

        step(f"selection certificates (B={config.certificates}) and margins")
        certify(result, threshold=config.threshold, n_boot=config.certificates, seed=config.seed)
    if config.topics:
        from ccai.analysis.topics import add_topics

        step("topics (MiniLM embeddings)")
        add_topics(result, None if config.topics < 0 else config.topics, seed=config.seed)
    if config.lm:
        from ccai.analysis.topics import summarize_groups, summarize_topics
        from ccai.models.backends import make_backend

        step("summaries by the language model (cited, checked)")
        backend = make_backend(config.lm)
        if config.topics:
            summarize_topics(result, backend, seed=config.seed)
        summarize_groups(result, backend, seed=config.seed)
    step("writing the run folder and report")
    from ccai.analysis.report import write_report

    inputs_used = [folder] + [p for p in (exclude, given_file) if p is not None]
    result.save(out, inputs=inputs_used, config=config.model_dump(), report=write_report)
    return result


def _in_export(name: str | None, folder: Path) -> Path | None:
    """A path as given, or else the file of that name inside the export folder (``ids-to-toss.csv``)."""
    if name is None:
        return None
    path = Path(name).expanduser()
    if path.is_file() or not (folder / name).is_file():
        return path
    return folder / name


def read_given(path: Path, column: str | None):
    """participant -> group from a CSV with a `participant` column and a group column."""
    import pandas as pd

    if not path.is_file():
        raise ValueError(f"given_file {path}: file not found")
    try:
        table = pd.read_csv(path)
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot read as CSV ({exc})") from exc
    id_column = next((c for c in ("participant", "participant_id", "pid") if c in table.columns), None)
    if id_column is None:
        raise ValueError(f"{path}: expected a 'participant' column (participant id), got {list(table)}")
    column = column or next((c for c in ("group", "group-id", "group_id") if c in table.columns), None)
    if column is None or column not in table.columns:
        raise ValueError(
            f"{path}: group column {column!r} not found; pass --given-column, one of "
            f"{[c for c in table.columns if c != id_column]}"
        )
    if table[id_column].duplicated().any():
        line = int(table.index[table[id_column].duplicated()][0]) + 2
        raise ValueError(f"{path}: line {line}: participant {table[id_column][line - 2]} appears twice")
    return table.set_index(id_column)[column]
