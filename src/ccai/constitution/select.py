"""Which statements become principles: a statements table from an analysis (or the CCAI reference file), then
selection by group-aware consensus (GAC) threshold or target count, with exclusions.

Two inputs feed one table so selection is written once:

* ``statements.csv`` of a ``ccai analyze`` output directory (columns ``statement_id``, ``text``,
  ``moderated``, ``n_agree``/``agree``, ``n_disagree``/``disagree``, ``n_pass``/``pass``, ``gac`` or
  ``gac_ccai``, and per opinion group ``g<k>_agree`` with ``g<k>_seen`` or ``g<k>_disagree``/``g<k>_pass``);
* ``ccai_statement_reference.csv`` (the CCAI organisers' figures: ``comment_body``, ``pub_g<k>_*``,
  ``gac_published_groups``), so the paper's selection can be rebuilt before an analysis exists.

The common table (:data:`COLUMNS`) is indexed by ``statement_id`` (str) and holds ``text``, ``moderated``,
``agree``, ``disagree``, ``pass``, ``gac`` and ``group_agree`` (dict group -> agree rate over seen).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ccai.constitution.model import ConstitutionError, StatementSource

COLUMNS = ("text", "moderated", "agree", "disagree", "pass", "gac", "group_agree")
#: The CCAI organisers' cut-off (Huang et al. 2024): statements above it became the public constitution.


def _first(frame: pd.DataFrame, names: Iterable[str], path: Path, what: str) -> pd.Series:
    for name in names:
        if name in frame.columns:
            return frame[name]
    raise ConstitutionError(f"{path}: no {what} column (expected one of {', '.join(names)})")


def _int_column(series: pd.Series, path: Path, name: str) -> pd.Series:
    values = pd.to_numeric(series, errors="coerce")
    bad = values.isna() | (values < 0)
    if bad.any():
        row = int(bad.to_numpy().nonzero()[0][0]) + 2  # header is line 1
        raise ConstitutionError(
            f"{path}: line {row}, column {name}: expected a non-negative count, got {series.iloc[row - 2]!r}"
        )
    return values.astype(int)


#: which participant labels the CCAI reference file's per-group agree rates come from (see its README)
GROUP_LABELLINGS = {
    "realigned": (
        "fix_g",
        "CCAI organisers' opinion groups, labels realigned to participants (group_realigned; the "
        "published group-id column is misaligned)",
    ),
    "published": (
        "pub_g",
        "CCAI organisers' opinion groups as published in clean_votes.csv (group_published: misaligned to "
        "participants, kept only to reproduce the paper's GAC)",
    ),
}


def read_statements(path: Path | str, group_labels: str = "realigned") -> pd.DataFrame:
    """Read an analysis ``statements.csv`` (or a directory holding one) or the CCAI reference CSV.

    For the reference CSV the selection's GAC is the paper's (published groups, so the 0.723 cut reproduces
    its choice), and the per-group agree rates shown on principles come from ``group_labels`` ('realigned',
    default: the labels on the right participants; or 'published'). Which labelling was used is kept in
    ``table.attrs['group_labelling']`` and written into the constitution's metadata.
    """
    if group_labels not in GROUP_LABELLINGS:
        raise ValueError(f"group_labels: expected one of {sorted(GROUP_LABELLINGS)}, got {group_labels!r}")
    path = Path(path)
    if path.is_dir():
        path = path / "statements.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: statements table not found (run `ccai analyze` or pass a CSV)")
    try:
        raw = pd.read_csv(path, dtype={"statement_id": str}, encoding="utf-8-sig")
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise ConstitutionError(f"{path}: not a readable CSV table: {exc}") from None
    if "statement_id" not in raw.columns:
        raise ConstitutionError(f"{path}: no statement_id column; expected an analysis statements.csv")
    if raw["statement_id"].duplicated().any():
        dup = raw.loc[raw["statement_id"].duplicated(), "statement_id"].iloc[0]
        raise ConstitutionError(f"{path}: statement_id {dup} appears twice")
    reference = "gac_published_groups" in raw.columns
    prefix, labelling = (
        GROUP_LABELLINGS[group_labels] if reference else ("g", "the analysis's opinion groups")
    )
    if reference and f"{prefix}0_agree" not in raw.columns:
        raise ConstitutionError(f"{path}: no {prefix}<k>_agree columns for the {group_labels!r} labelling")
    out = pd.DataFrame(index=raw["statement_id"].astype(str))
    out.index.name = "statement_id"
    out["text"] = (
        _first(raw, ["text", "comment_body", "comment-body"], path, "text").fillna("").astype(str).to_numpy()
    )
    # moderation unknown (empty) counts as accepted: only 0 (unmoderated) and -1 (rejected) are left out
    moderated = raw["moderated"] if "moderated" in raw.columns else pd.Series(1, index=raw.index)
    out["moderated"] = pd.to_numeric(moderated, errors="coerce").fillna(1).astype(int).to_numpy()
    for name in ("agree", "disagree", "pass"):
        column = _first(raw, [f"n_{name}", name], path, name)
        out[name] = _int_column(column, path, column.name).to_numpy()
    gac_names = ["gac_published_groups"] if reference else ["gac", "gac_ccai"]
    gac = pd.to_numeric(_first(raw, gac_names, path, "GAC"), errors="coerce")
    if ((gac < 0) | (gac > 1)).any():
        raise ConstitutionError(f"{path}: GAC values must lie in [0, 1]")
    out["gac"] = gac.to_numpy()
    groups = sorted({int(m.group(1)) for c in raw.columns if (m := re.fullmatch(rf"{prefix}(\d+)_agree", c))})
    rates: list[dict[str, float]] = [{} for _ in range(len(raw))]
    for k in groups:
        agree = pd.to_numeric(raw[f"{prefix}{k}_agree"], errors="coerce")
        if f"{prefix}{k}_seen" in raw.columns:
            seen = pd.to_numeric(raw[f"{prefix}{k}_seen"], errors="coerce")
        else:
            seen = agree + pd.to_numeric(raw[f"{prefix}{k}_disagree"], errors="coerce")
            seen = seen + pd.to_numeric(raw[f"{prefix}{k}_pass"], errors="coerce")
        for i, (a, s) in enumerate(zip(agree, seen, strict=True)):
            if s and not math.isnan(s):
                rates[i][str(k)] = round(float(a) / float(s), 6)
    out["group_agree"] = rates
    out.attrs["group_labelling"] = labelling
    return out


#: consensus measures a selection may rank by: the paper's GAC (product over groups: falls with the number of
#: groups k) or the geometric mean of the per-group agree rates (GAC ** (1 / k): the same scale for any k)
CONSENSUS = ("gac", "geomean")
#: the geometric-mean threshold equal to the paper's 0.723 for its two groups (sqrt(0.723))
GEOMEAN_THRESHOLD = 0.85


def geomean_consensus(group_agree: dict[str, float]) -> float:
    """Geometric mean of the per-group agree rates (agree / seen); NaN with no group (0 if any group is 0)."""
    rates = list(group_agree.values())
    if not rates:
        return math.nan
    if min(rates) <= 0:
        return 0.0
    return math.exp(sum(math.log(r) for r in rates) / len(rates))


def with_consensus(statements: pd.DataFrame, consensus: str = "gac") -> pd.DataFrame:
    """The table ranked by ``consensus``: 'gac' as read, or 'geomean' (its ``gac`` column replaced by the
    geometric mean of ``group_agree``, the product kept as ``gac_product``).

    Why: the paper's GAC is a product over groups, so a consultation (or a resample of one) clustered into
    5 groups passes far fewer statements at 0.723 than one with 2. Across consultations, or resamples, the
    geometric mean keeps one threshold meaning one thing. The measure is in ``attrs['consensus']``."""
    if consensus not in CONSENSUS:
        raise ValueError(f"consensus: expected one of {', '.join(CONSENSUS)}, got {consensus!r}")
    out = statements.copy()
    out.attrs = dict(statements.attrs)
    if consensus == "geomean":
        out["gac_product"] = out["gac"]
        out["gac"] = [round(geomean_consensus(g), 6) for g in out["group_agree"]]
        out.attrs["consensus"] = "geometric mean of the per-group agree rates"
    else:
        out.attrs.setdefault("consensus", "GAC (product of the per-group agree rates)")
    return out


@dataclass
class Selection:
    """The statements chosen, how, and those left out (so the choice can be audited)."""

    statements: pd.DataFrame
    threshold: float
    excluded: list[str] = field(default_factory=list)
    considered: int = 0

    def sources(self, consultation: str | None = None, country: str | None = None) -> list[StatementSource]:
        return [statement_source(sid, row, consultation, country) for sid, row in self.statements.iterrows()]


def statement_source(
    sid: str, row: pd.Series, consultation: str | None = None, country: str | None = None
) -> StatementSource:
    gac = row["gac"]
    return StatementSource(
        id=str(sid),
        text=str(row["text"]),
        consultation=consultation,
        country=country,
        gac=None if pd.isna(gac) else round(float(gac), 6),
        agree=int(row["agree"]),
        disagree=int(row["disagree"]),
        **{"pass": int(row["pass"])},
        group_agree=dict(row["group_agree"]),
    )


def threshold_for_count(statements: pd.DataFrame, count: int) -> float:
    """The GAC threshold that keeps the ``count`` statements with highest GAC (ties at the cut all kept)."""
    gac = statements["gac"].dropna().sort_values(ascending=False)
    if count < 1:
        raise ValueError(f"--count must be at least 1, got {count}")
    if count > len(gac):
        raise ValueError(f"--count {count} is more than the {len(gac)} statements with a GAC")
    return float(gac.iloc[count - 1])


def select_statements(
    statements: pd.DataFrame,
    threshold: float | None = None,
    count: int | None = None,
    exclude: Iterable[str] = (),
    moderated_only: bool = True,
) -> Selection:
    """Statements with GAC >= ``threshold`` (or the top ``count``), minus ``exclude`` ids, best first."""
    if (threshold is None) == (count is None):
        raise ValueError("give exactly one of threshold (e.g. 0.723) or count (e.g. 75)")
    pool = statements
    if moderated_only:
        pool = pool[pool["moderated"].astype(int) >= 1]
    exclude = [str(e) for e in exclude]
    unknown = [e for e in exclude if e not in statements.index]
    if unknown:
        raise ValueError(f"excluded statement ids not in the table: {', '.join(unknown[:10])}")
    pool = pool.drop(index=[e for e in exclude if e in pool.index])
    if count is not None:
        threshold = threshold_for_count(pool, count)
    assert threshold is not None
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"GAC threshold must lie in [0, 1], got {threshold}")
    chosen = pool[pool["gac"] >= threshold].sort_values("gac", ascending=False, kind="mergesort")
    if chosen.empty:
        best = pool["gac"].max()
        raise ValueError(
            f"no statement has GAC >= {threshold:.3f} (the highest of the {len(pool)} considered is "
            f"{'none' if pd.isna(best) else f'{best:.3f}'}): lower --threshold, or use --count N"
        )
    textless = chosen.index[chosen["text"].str.strip() == ""].tolist()
    if textless:
        raise ValueError(
            f"selected statements without text: {', '.join(textless[:10])}; pass the statement texts to the "
            "analysis (e.g. comments.csv) so principles can be written from them"
        )
    return Selection(chosen, float(threshold), exclude, considered=len(pool))
