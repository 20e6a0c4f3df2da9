"""The CCAI constitution figures, rebuilt from the real data and set next to the paper's.

``reproduce_ccai`` builds the public constitution from the CCAI statements (GAC >= 0.723), writes it in every
format, compares it with the project's standard constitution, and returns the figures; ``reproduce_avenue3``
builds one constitution per bundled national text and merges them over the UDHR. ``ccai constitution
reproduce`` prints both tables.

Paper figures (Huang et al. 2024, FAccT; Anthropic's CCAI post): 75 principles in the public constitution;
about 50% concept overlap with the standard constitution; the public constitution promotes desired behaviour
more often than it avoids undesired behaviour. Our standard constitution is our own (not the paper's), so the
overlap figure measures a like-for-like comparison, not the same pair of texts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ccai.analysis.paper import CCAI_THRESHOLD
from ccai.constitution.build import BuildResult, build_constitution
from ccai.constitution.compare import Comparison, compare, mark_inspired_by_standard
from ccai.constitution.dedup import DEFAULT_MERGE_SIMILARITY, Embedder, cluster
from ccai.constitution.merge import MergeResult, merge_constitutions
from ccai.constitution.model import Constitution
from ccai.constitution.national import BUNDLED, from_text
from ccai.constitution.rewrite import clean, core_text
from ccai.constitution.select import read_statements
from ccai.constitution.standard import standard_constitution

PAPER = {
    "threshold": CCAI_THRESHOLD,
    "public_principles": 75,
    "overlap_with_standard": 0.5,
    "promotes_more_than_avoids": True,
}
FORMATS = ("json", "yaml", "md", "html", "recipe.json")


def write_all_formats(constitution: Constitution, folder: Path, stem: str) -> list[Path]:
    return [constitution.save(folder / f"{stem}.{suffix}") for suffix in FORMATS]


def write_public(
    result: BuildResult, out: Path, stem: str, embedder: Embedder
) -> tuple[Constitution, Comparison]:
    """A build's outputs: the constitution (marked where the standard one inspires it) in every format, the
    comparison with the standard constitution (HTML) and the selected statements (CSV)."""
    comparison = compare(result.constitution, standard_constitution(), embedder)
    public = mark_inspired_by_standard(comparison)
    write_all_formats(public, out, stem)
    (out / "compare_standard.html").write_text(comparison.to_html())
    result.selection.statements.drop(columns=["group_agree"]).to_csv(out / "selection.csv")
    return public, comparison


def reproduce_ccai(
    out: Path | str,
    embedder: Embedder,
    statements_csv: Path | str | None = None,
    merge_similarity: float = DEFAULT_MERGE_SIMILARITY,
) -> tuple[dict[str, Any], BuildResult, Comparison]:
    """Public constitution from the CCAI statements, compared with the standard one, and its figures."""
    from ccai.datasets import dataset_path

    out = Path(out)
    source = Path(statements_csv) if statements_csv else dataset_path("ccai", "ccai_statement_reference.csv")
    table = read_statements(source)
    review = out / "review.yaml"
    if not review.exists() and CCAI_REVIEW.is_file() and statements_csv is None:
        out.mkdir(parents=True, exist_ok=True)  # start from the project's reviewed decisions and wordings
        review.write_text(CCAI_REVIEW.read_text(encoding="utf-8"), encoding="utf-8")
    result = build_constitution(
        table,
        threshold=CCAI_THRESHOLD,
        embedder=embedder,
        merge_similarity=merge_similarity,
        review=review,
        name="ccai-public",
        consultation="ccai-us-2023",
        country="US",
    )
    public, comparison = write_public(result, out, "public", embedder)
    standard = comparison.b
    shares, std_shares = public.tag_shares(), standard.tag_shares()
    figures = {
        "statements_considered": result.selection.considered,
        "statements_selected": len(result.selection.statements),
        "merges_proposed": len(result.merges),
        "statements_merged": sum(len(m.members) for m in result.merges if m.decision == "accept"),
        "public_principles": len(public),
        "standard_principles": len(standard),
        "overlap_public_covered_by_standard": round(comparison.a_covered, 4),
        "overlap_standard_covered_by_public": round(comparison.b_covered, 4),
        "overlap_curve": {str(k): round(v, 4) for k, v in comparison.coverage_curve().items()},
        "public_promotes_desired": round(shares["promotes-desired"], 4),
        "public_avoids_undesired": round(shares["avoids-undesired"], 4),
        "standard_promotes_desired": round(std_shares["promotes-desired"], 4),
        "standard_avoids_undesired": round(std_shares["avoids-undesired"], 4),
        "public_tags": {k: round(v, 4) for k, v in shares.items()},
        "standard_tags": {k: round(v, 4) for k, v in std_shares.items()},
        "principles_by_merge_similarity": principles_by_merge_similarity(result, embedder),
        "content_hash": public.content_hash,
    }
    return figures, result, comparison


#: the reviewed CCAI public constitution's review file (merge decisions and wordings written by a person)
CCAI_REVIEW = Path(__file__).with_name("reviews") / "ccai-public.review.yaml"


def reproduce_inputs() -> list[Path]:
    """Every file ``reproduce`` reads, so its manifest records their hashes (data can change under a path)."""
    from ccai.datasets import dataset_path

    files = [dataset_path("ccai", "ccai_statement_reference.csv")]
    files += [
        dataset_path("constitutions", *BUNDLED[c][0].split("/"))
        for c in ("UDHR", "US", "ZA", "IN", "DE", "JP")
    ]
    if CCAI_REVIEW.is_file():
        files.append(CCAI_REVIEW)
    return [Path(f) for f in files]


def principles_by_merge_similarity(
    result: BuildResult, embedder: Embedder, levels: tuple[float, ...] = (0.5, 0.55, 0.6, 0.65, 0.7)
) -> dict[str, int]:
    """How many principles the unreviewed merges would leave at each merge similarity: the count depends on
    this setting (the organisers' 75 came from reading, not from a threshold), so it is shown as a curve."""
    texts = [core_text(clean(t)) for t in result.selection.statements["text"]]
    vectors = embedder(texts)
    return {str(level): len(cluster(vectors, level)) for level in levels}


def reproduce_avenue3(
    out: Path | str, embedder: Embedder, countries: tuple[str, ...] = ("US", "ZA", "IN", "DE", "JP")
) -> tuple[dict[str, Any], dict[str, Constitution], MergeResult]:
    """A constitution per bundled national text and their global merge over the UDHR."""
    from ccai.datasets import dataset_path

    out = Path(out)
    built: dict[str, Constitution] = {}
    for country in ("UDHR", *countries):
        relative, document = BUNDLED[country]
        built[country] = from_text(dataset_path("constitutions", *relative.split("/")), country, document)
        built[country].save(out / f"{country.lower()}.json")
    base = built.pop("UDHR")
    merged = merge_constitutions([built[c] for c in countries], base=base, embedder=embedder)
    write_all_formats(merged.constitution, out, "global")
    figures = {
        "per_country_principles": {c: len(k) for c, k in {"UDHR": base, **built}.items()},
        "global_principles": len(merged.constitution),
        "support_counts": merged.support_counts(),
        "principles_per_country": {c: sum(c in s for s in merged.support.values()) for c in merged.countries},
        "conflicts": len(merged.conflicts),
    }
    return figures, built, merged
