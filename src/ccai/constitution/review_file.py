"""Edit a build's ``review.yaml`` from outside the file (the consultation app's review page).

The review file is the one place a person's decisions live (``ccai constitution build`` reads it back), so a
web page writes the same file rather than a second store: accept/reject each merge, pick the statement whose
words it keeps, give a merge or a flagged statement a wording of one's own. Edits are checked before
anything is written (a wording must be a principle; ``keep`` must be a member; ids must exist), and the file
is replaced atomically with its explanatory header kept, so a refused edit leaves it as it was.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ccai.constitution.model import ConstitutionError
from ccai.constitution.rewrite import principle_answer


@dataclass
class ReviewEdits:
    """What a person changed: per merge id a decision / keep / wording; per statement id a wording.
    A wording of ``""`` clears it; ``None`` leaves it as it is."""

    decisions: dict[str, str] = field(default_factory=dict)
    keep: dict[str, str] = field(default_factory=dict)
    merge_wordings: dict[str, str | None] = field(default_factory=dict)
    statement_wordings: dict[str, str | None] = field(default_factory=dict)


def load_review(path: Path | str) -> tuple[str, dict[str, Any]]:
    """(comment header, data) of a review file; the data has ``merges`` and ``wordings`` lists."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no review file (run `ccai constitution build` first)")
    text = path.read_text(encoding="utf-8-sig")
    header = "".join(line + "\n" for line in text.splitlines() if line.startswith("#"))
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConstitutionError(f"{path}: not readable YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConstitutionError(f"{path}: expected a mapping with 'merges' and 'wordings'")
    data.setdefault("merges", [])
    data.setdefault("wordings", [])
    return header, data


def _wording(value: str | None, where: str) -> str | None:
    text = (value or "").strip()
    if not text:
        return None
    if principle_answer(text) is None:
        raise ConstitutionError(
            f"{where}: a principle starts with 'Choose the response that', got {text[:60]!r}"
        )
    return text


def apply_edits(path: Path | str, edits: ReviewEdits, by: str) -> dict[str, int]:
    """Apply ``edits`` to the review file at ``path`` (all checked first; nothing written on an error).
    Returns counts of what changed. ``by`` names the person (recorded as a merge's ``wording_by``); the
    approval of the built constitution (``ccai constitution approve``) records who reviewed it."""
    header, data = load_review(path)
    merges = {str(m.get("id")): m for m in data["merges"] if isinstance(m, dict)}
    wordings = {str(w.get("statement")): w for w in data["wordings"] if isinstance(w, dict)}
    for ids, known, what in (
        (set(edits.decisions) | set(edits.keep) | set(edits.merge_wordings), merges, "merge"),
        (set(edits.statement_wordings), wordings, "statement"),
    ):
        unknown = sorted(ids - set(known))
        if unknown:
            raise ConstitutionError(f"{path}: no {what} {', '.join(unknown)} in the review file")
    changed = {"decisions": 0, "wordings": 0}
    for mid, decision in edits.decisions.items():
        if decision not in ("accept", "reject"):
            raise ConstitutionError(f"merge {mid}: decision must be 'accept' or 'reject', got {decision!r}")
        if merges[mid].get("decision", "accept") != decision:
            merges[mid]["decision"] = decision
            changed["decisions"] += 1
    for mid, keep in edits.keep.items():
        members = [str(m) for m in merges[mid].get("members") or []]
        if keep not in members:
            raise ConstitutionError(f"merge {mid}: keep {keep} is not one of the members {members}")
        merges[mid]["keep"] = keep
    for items, new, kind in (
        (merges, edits.merge_wordings, "merge"),
        (wordings, edits.statement_wordings, "statement"),
    ):
        for key, value in new.items():
            if value is None:
                continue
            text = _wording(value, f"{kind} {key}: wording")
            old = items[key].get("wording")
            if (old or None) != text:
                items[key]["wording"] = text
                if kind == "merge":  # a statement's wording has no author field: it is a person's
                    items[key]["wording_by"] = f"person ({by})" if text else None
                changed["wordings"] += 1
    for item in [*merges.values(), *wordings.values()]:  # keep the file's style: no null fields but wording
        for key in [k for k, v in item.items() if v is None and k != "wording"]:
            del item[key]
    from ccai.files import atomic_write_text

    body = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=110)
    atomic_write_text(path, header + body)
    return changed
