"""The constitution stage's one entry, ``run(config, inputs, out)``: ``ccai constitution build`` and
``ccai study`` call it, so the folder is the same whichever way the stage ran.

It writes the built constitution in every format (``<name>.{json,yaml,md,html}`` + recipe; ``public`` by
default), the standard constitution beside it (``standard.*``, what the training stage trains the comparison
model on), the comparison of the two (``compare_standard.html``), the selected statements (``selection.csv``),
the merge review file (``review.yaml``) and the run's ``config.yaml`` / ``manifest.json`` / ``log.jsonl``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from ccai.analysis.paper import CCAI_THRESHOLD
from ccai.config import StageConfig
from ccai.constitution.build import BuildResult
from ccai.constitution.dedup import DEFAULT_MERGE_SIMILARITY, Embedder


class ConstitutionConfig(StageConfig):
    """Which statements become principles, and how they are merged and rewritten."""

    threshold: float | None = Field(CCAI_THRESHOLD, gt=0, le=1, description="keep statements with GAC >= T")
    count: int | None = Field(None, ge=1, description="or: the N statements with the highest GAC")
    exclude: list[str] = Field(default_factory=list, description="statement ids to leave out")
    review: str | None = Field(None, description="merge review YAML (default OUT/review.yaml)")
    merge_similarity: float = Field(DEFAULT_MERGE_SIMILARITY, gt=0, le=1)
    consensus: Literal["gac", "geomean"] = Field(
        "gac", description="rank by the paper's GAC or the geometric mean of group agree rates (k-free)"
    )
    name: str = "public"
    consultation: str | None = Field(None, description="consultation label for the sources")
    country: str | None = None
    rewriter: Literal["rules", "lm"] = "rules"
    model: str | None = Field(None, description="rewriter=lm: a model folder, 'smollm2' or openai:URL#MODEL")
    lm_wording: bool = Field(False, description="rewriter=lm: the LM also words each merge")
    max_new_tokens: int = Field(64, ge=1)

    @model_validator(mode="after")
    def _one_rule(self) -> ConstitutionConfig:
        if (self.threshold is None) == (self.count is None):
            raise ValueError("give exactly one of --threshold T (e.g. 0.723) or --count N (e.g. 75); in a "
                             "config set the other to null")
        if (self.rewriter == "lm") != (self.model is not None):
            raise ValueError(
                "--rewriter lm needs --model DIR ('smollm2' or openai:URL#MODEL); --model needs --rewriter lm"
            )
        if self.lm_wording and self.rewriter != "lm":
            raise ValueError("--lm-wording needs --rewriter lm --model DIR")
        return self


def run(
    config: ConstitutionConfig,
    inputs: Path | str,
    out: Path | str,
    *,
    embedder: Embedder | None = None,
    lm: Any = None,
) -> BuildResult:
    """Build the public constitution from ``inputs`` (an analysis folder or a statements CSV) into ``out``.

    ``embedder`` and ``lm`` may be passed in already loaded (the CLI shows a spinner while they load);
    otherwise the bundled sentence embedder and, for ``rewriter=lm``, ``config.model`` are loaded here.
    """
    from ccai.constitution.build import build_constitution
    from ccai.constitution.dedup import default_embedder
    from ccai.constitution.select import read_statements, with_consensus
    from ccai.constitution.standard import standard_constitution
    from ccai.constitution.study import write_all_formats, write_public
    from ccai.manifest import RunDir

    source, out = Path(inputs), Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out}: exists and is not a folder; choose another output folder")
    table = with_consensus(read_statements(source), config.consensus)
    review = Path(config.review) if config.review else out / "review.yaml"
    csv_path = source / "statements.csv" if source.is_dir() else source
    run_dir = RunDir.create(out, config.model_dump(), seed=config.seed,
                            inputs=[csv_path] + ([review] if review.exists() else []), stage="constitution")
    if lm is None and config.rewriter == "lm":
        from ccai.constitution.lm import load_backend_lm

        lm = load_backend_lm(config.model, max_new_tokens=config.max_new_tokens, seed=config.seed)
    embedder = embedder or default_embedder()
    result = build_constitution(
        table, threshold=config.threshold, count=config.count, exclude=config.exclude, embedder=embedder,
        merge_similarity=config.merge_similarity, review=review, name=config.name,
        consultation=config.consultation, country=config.country, lm=lm,
        lm_wording=lm.merge_wording if lm is not None and config.lm_wording else None, lm_name=config.model,
    )
    public, comparison = write_public(result, out, config.name, embedder)
    write_all_formats(standard_constitution(), out, "standard")
    summary = {
        **result.summary(),
        "content_hash": public.content_hash,
        "overlap_with_standard": round(comparison.a_covered, 4),
    }
    run_dir.log("built", **summary)
    run_dir.finish(summary=summary)
    return result
