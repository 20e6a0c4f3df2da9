"""The written contract for CAI data sets: TRL's column names, plus provenance columns.

Row kinds, all stored as JSON Lines (one object per line; load with ``datasets.load_dataset("json", ...)``
or :func:`read_rows`):

``sl`` (SL-CAI supervised data, TRL *prompt-completion*, conversational)::

    {"id": "hh_harmless_base_test_00017", "source": "red_team",
     "prompt": [{"role": "user", "content": "How do I ..."}],
     "completion": [{"role": "assistant", "content": "<final revision>"}],
     "principle_ids": ["p03", "p11"], "initial_response": "...", "critiques": ["..."], "revisions": ["..."],
     "constitution_hash": "9f2c..."}

  Helpful rows (``source: "helpful"``) have no critiques: ``principle_ids`` is empty and the completion is the
  model's own helpful response, mixed in as the CAI paper did.

``preference`` (RL-CAI AI-feedback pairs, TRL *preference* with explicit prompt, conversational)::

    {"id": "...", "prompt": [{"role": "user", ...}],
     "chosen": [{"role": "assistant", ...}], "rejected": [{"role": "assistant", ...}],
     "soft_label": 0.63, "principle_id": "p07", "p_a": 0.37, "p_a_orders": [0.41, 0.33],
     "response_a": "...", "response_b": "...", "option_mass": 0.91, "constitution_hash": "9f2c..."}

  ``soft_label`` is the feedback model's probability that ``chosen`` is the better response (so >= 0.5);
  ``p_a`` is P(response_a better) averaged over both option orders, ``p_a_orders`` the single-order values.

``sample`` (intermediate): ``{"id", "prompt", "response_a", "response_b"}``, two samples before labelling.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "user", "assistant"]
    content: str


class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    prompt: list[Message] = Field(min_length=1)
    constitution_hash: str = ""


def _one_assistant(value: list[Message]) -> list[Message]:
    if len(value) != 1 or value[0].role != "assistant":
        raise ValueError("expected exactly one assistant message")
    return value


class SLRow(_Row):
    """One SL-CAI training example (prompt -> final revision, or prompt -> helpful response)."""

    source: Literal["red_team", "helpful"]
    completion: list[Message]
    principle_ids: list[str] = Field(default_factory=list)
    initial_response: str = ""
    critiques: list[str] = Field(default_factory=list)
    revisions: list[str] = Field(default_factory=list)
    #: Why a revision was not accepted, per round ("" = accepted); see ccai.training.quality.
    revision_checks: list[str] = Field(default_factory=list)
    #: Why the row is kept out of SFT (a data-quality gate), or None when it is trained on.
    dropped: str | None = None
    #: The completion is a cut-off reply trimmed to its last complete sentence (sl.quality.trim_truncated).
    trimmed: bool = False

    _check = field_validator("completion")(_one_assistant)


class PreferenceRow(_Row):
    """One AI-labelled comparison (chosen/rejected ordered by the soft label)."""

    chosen: list[Message]
    rejected: list[Message]
    soft_label: float = Field(ge=0.0, le=1.0)
    principle_id: str = ""
    p_a: float = Field(ge=0.0, le=1.0)
    p_a_orders: list[float] = Field(default_factory=list)
    response_a: str = ""
    response_b: str = ""
    option_mass: float | None = None
    reasoning: list[str] = Field(default_factory=list)
    #: Where the comparison comes from: AI feedback under the constitution (harmlessness), a human
    #: helpfulness comparison (HH-RLHF), or an SL-CAI revision preferred over its initial answer.
    source: Literal["ai_harmless", "human_helpful", "revision"] = "ai_harmless"

    _check = field_validator("chosen", "rejected")(_one_assistant)


class SampleRow(_Row):
    """Two sampled responses to one prompt, before AI feedback (an intermediate RL-CAI file)."""

    response_a: str
    response_b: str


ROW_MODELS: dict[str, type[_Row]] = {"sl": SLRow, "preference": PreferenceRow, "sample": SampleRow}


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def assistant(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


def validate_row(row: dict[str, Any], kind: str, where: str = "<row>") -> dict[str, Any]:
    """Check one row against the contract; the error names ``where`` and the field."""
    model = ROW_MODELS.get(kind)
    if model is None:
        raise ValueError(f"unknown row kind {kind!r}; expected one of {sorted(ROW_MODELS)}")
    try:
        return model.model_validate(row).model_dump(mode="json")
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(row)'}: {e['msg']}" for e in exc.errors()
        )
        raise ValueError(f"{where}: not a valid {kind} row ({problems})") from None


def write_rows(path: Path | str, rows: Iterable[dict[str, Any]], kind: str) -> Path:
    """Validate and write rows as JSON Lines, atomically (a temp file renamed into place)."""
    from ccai.files import atomic_open

    path = Path(path)
    with atomic_open(path) as handle:
        for index, row in enumerate(rows):
            clean = validate_row(row, kind, f"{path} row {index + 1}")
            handle.write(json.dumps(clean, ensure_ascii=False) + "\n")
    return path


def append_rows(path: Path | str, rows: Iterable[dict[str, Any]], kind: str) -> None:
    """Append validated rows (used for resumable, chunk-by-chunk generation)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(validate_row(r, kind, f"{path} (new row)"), ensure_ascii=False) for r in rows]
    with open(path, "a", encoding="utf-8") as handle:
        handle.write("".join(line + "\n" for line in lines))


def iter_json_lines(path: Path | str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line of a JSONL file; errors name the file and line."""
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
            if not isinstance(data, dict):
                raise ValueError(f"{path}:{number}: expected a JSON object per line")
            yield number, data


def read_rows(path: Path | str, kind: str) -> list[dict[str, Any]]:
    """Read and validate a JSONL file of ``kind`` rows; errors name the file and line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: data file not found")
    return [validate_row(data, kind, f"{path}:{number}") for number, data in iter_json_lines(path)]


def to_dataset(rows: list[dict[str, Any]], columns: Iterable[str]) -> Any:
    """A ``datasets.Dataset`` with only ``columns`` (what a TRL trainer should see)."""
    from datasets import Dataset

    keep = list(columns)
    return Dataset.from_list([{c: r[c] for c in keep} for r in rows])
