"""CLI commands of the constitution stage (thin wrappers over `ccai.constitution`)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from ccai.commands._common import command, user_errors

out = Console()


def _embedder():
    from rich.progress import Progress, SpinnerColumn, TextColumn

    from ccai.constitution.dedup import default_embedder

    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), console=Console(stderr=True), transient=True
    ) as progress:
        progress.add_task("loading the bundled sentence-embedding model (all-MiniLM-L6-v2)...")
        return default_embedder()


def _backend_lm(model: str, max_new_tokens: int, seed: int):
    """The LM rewriter over a local model (loading shown as a spinner)."""
    from rich.progress import Progress, SpinnerColumn, TextColumn

    from ccai.constitution.lm import load_backend_lm

    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), console=Console(stderr=True), transient=True
    ) as progress:
        progress.add_task(f"loading the model {model} ...")
        return load_backend_lm(model, max_new_tokens=max_new_tokens, seed=seed)


REWRITER_HELP = (
    "'rules' (deterministic, default) or 'lm' (a model via --model; every answer is kept on its "
    "principle in metadata.rewrite.lm_answer and checked: a principle, same polarity, adds and drops "
    "nothing; a rejected answer falls back to the rules, with the reasons in metadata.rewrite.lm_rejected)."
)
MODEL_HELP = (
    "With --rewriter lm: a Hugging Face model folder, 'smollm2' (the bundled SmolLM2-135M), or "
    "openai:URL#MODEL (an OpenAI-compatible server, e.g. `ccai models serve`)."
)


def _check_rewriter(rewriter: str, model: str | None) -> None:
    if rewriter not in ("rules", "lm"):
        raise ValueError(f"--rewriter: expected 'rules' or 'lm', got {rewriter!r}")
    if (rewriter == "lm") != (model is not None):
        raise ValueError(
            "--rewriter lm needs --model DIR (or 'smollm2', or openai:URL#MODEL), "
            "and --model needs --rewriter lm"
        )


def _lm_progress(lm):
    """A progress display counting the prompts the LM has answered (none when there is no LM)."""
    from contextlib import nullcontext

    from rich.progress import Progress, SpinnerColumn, TextColumn

    if lm is None:
        return nullcontext()
    progress = Progress(
        SpinnerColumn(), TextColumn("LM answers: {task.completed}"), console=Console(stderr=True)
    )
    task = progress.add_task("", total=None)
    lm.backend.on_batch = lambda n: progress.advance(task, n)
    return progress


def _lm_count(constitution) -> str:
    from collections import Counter

    rewrites = [p.metadata.get("rewrite", {}) for p in constitution.principles]
    reasons = Counter(
        r.split(":")[0] for rw in rewrites for r in rw.get("lm_rejected", []) or []
    ).most_common()
    used = sum(rw.get("by") == "lm" for rw in rewrites)
    why = ", ".join(f"{reason} ({n})" for reason, n in reasons)
    kept = "rejected answers kept the rules (metadata.rewrite.lm_rejected)"
    return f"{used} of {len(rewrites)}; {kept}" + (f": {why}" if why else "")


def _table(title: str, rows: list[tuple[str, ...]], headers: tuple[str, ...]) -> None:
    table = Table(title=title, title_justify="left")
    for header in headers:
        table.add_column(header)
    for row in rows:
        table.add_row(*[str(x) for x in row])
    out.print(table)


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the `ccai` app."""
    group = typer.Typer(
        help=(
            "Turn consensus statements (or legal texts) into Constitutional-AI principles with provenance; "
            "merge, compare, show and convert constitutions."
        ),
        no_args_is_help=True,
    )
    app.add_typer(group, name="constitution")

    @command(group, "build")
    def build(
        out_dir: Path = typer.Option(..., "--out", help="Output folder (a run directory)."),
        analysis: Path | None = typer.Option(None, "--analysis", help="A `ccai analyze` output folder."),
        statements: Path | None = typer.Option(
            None,
            "--statements",
            help="A statements CSV (analysis statements.csv or ccai_statement_reference.csv).",
        ),
        threshold: float | None = typer.Option(None, "--threshold", help="Keep statements with GAC >= T."),
        count: int | None = typer.Option(
            None, "--count", help="Make N principles: statements are taken in GAC order until merges leave N."
        ),
        exclude: list[str] = typer.Option([], "--exclude", help="Statement id to leave out (repeatable)."),
        consensus: str = typer.Option(
            "gac",
            "--consensus",
            help="'gac' (the paper's product over groups) or 'geomean' (geometric mean of the group agree "
            "rates: one threshold means the same for any number of groups; 0.85 matches 0.723 at 2 groups).",
        ),
        review: Path | None = typer.Option(
            None,
            "--review",
            help="Merge review YAML (default OUT/review.yaml): written on the first run, "
            "applied on the next.",
        ),
        merge_similarity: float = typer.Option(
            0.6, "--merge-similarity", help="Cosine similarity to propose a merge."
        ),
        name: str = typer.Option("public", "--name", help="Constitution name."),
        consultation: str | None = typer.Option(
            None, "--consultation", help="Consultation label for sources."
        ),
        country: str | None = typer.Option(None, "--country", help="Country code for the sources."),
        rewriter: str = typer.Option("rules", "--rewriter", help=REWRITER_HELP),
        model: str | None = typer.Option(None, "--model", help=MODEL_HELP),
        lm_wording: bool = typer.Option(
            False, "--lm-wording", help="With --rewriter lm: also let the LM propose each merge's wording."
        ),
        max_new_tokens: int = typer.Option(64, "--max-new-tokens", help="LM answer length limit (tokens)."),
        seed: int = typer.Option(0, "--seed", help="LM seed (decoding is greedy; the seed is recorded)."),
    ) -> None:
        """Build a public constitution from an analysis: select by GAC, merge near-duplicates, rewrite.

        The first run writes OUT/review.yaml with the proposed merges (applied as proposed); edit it
        (accept/reject, move members, set your own wording) and run the same command again to apply it.
        Writes public.json (exchange format), .yaml, .md, .html and .recipe.json, with each principle's
        sources (statement, votes, GAC, agree rate per group).

        Example: ccai constitution build --statements ../shared/data/ccai/ccai_statement_reference.csv
        --threshold 0.723 --out runs/public

        With a model rewriting (slower; each principle records the LM's answer in metadata.rewrite):
        ccai constitution build --statements ... --threshold 0.723 --rewriter lm --model smollm2 --out runs/lm
        """
        with user_errors():
            import json

            from ccai.constitution.stage import ConstitutionConfig, run

            if (analysis is None) == (statements is None):
                raise ValueError("give exactly one of --analysis DIR or --statements CSV")
            config = ConstitutionConfig(
                threshold=threshold,
                count=count,
                exclude=exclude,
                consensus=consensus,
                review=str(review) if review else None,
                merge_similarity=merge_similarity,
                name=name,
                consultation=consultation,
                country=country,
                rewriter=rewriter,
                model=model,
                lm_wording=lm_wording,
                max_new_tokens=max_new_tokens,
                seed=seed,
            )
            source = analysis if analysis is not None else statements
            review_path = review or out_dir / "review.yaml"
            lm = _backend_lm(model, max_new_tokens, seed) if model else None
            embedder = _embedder()
            with _lm_progress(lm):
                result = run(config, source, out_dir, embedder=embedder, lm=lm)
            summary = json.loads((out_dir / "manifest.json").read_text())["summary"]
            constitution = result.constitution
            state = "applied (reviewed)" if result.reviewed else f"proposed -> edit {review_path}"
            _table(
                f"constitution '{name}' ({out_dir})",
                [
                    (
                        "statements selected",
                        f"{summary['statements_selected']} of {summary['statements_considered']}"
                        f" ({'GAC' if consensus == 'gac' else 'geomean'} >= {summary['threshold']:.3f})",
                    ),
                    ("merges", f"{len(result.merges)} {state}"),
                    ("principles", summary["principles"]),
                    *([("rewritten by the LM", _lm_count(constitution))] if lm else []),
                    ("overlap with the standard constitution", f"{summary['overlap_with_standard']:.0%}"),
                    ("content hash", summary["content_hash"][:16]),
                ],
                ("", "value"),
            )

    @command(group, "reproduce")
    def reproduce(
        out_dir: Path = typer.Option(..., "--out", help="Output folder."),
        merge_similarity: float = typer.Option(0.6, "--merge-similarity"),
    ) -> None:
        """Rebuild the CCAI public constitution and the avenue-3 global one; print them next to the paper.

        Uses the shared data (ccai/ccai_statement_reference.csv and constitutions/). Writes
        OUT/ccai/public.* and OUT/legal/{us,za,in,de,jp,udhr}.json + global.*.

        Example: ccai constitution reproduce --out runs/constitution-study
        """
        with user_errors():
            from ccai.constitution.study import PAPER, reproduce_avenue3, reproduce_ccai, reproduce_inputs
            from ccai.manifest import RunDir

            run = RunDir.create(
                out_dir,
                {"merge_similarity": merge_similarity},
                seed=None,
                inputs=reproduce_inputs(),
                stage="constitution",
            )
            embedder = _embedder()
            figures, _, _ = reproduce_ccai(out_dir / "ccai", embedder, merge_similarity=merge_similarity)
            _table(
                "CCAI public constitution: ours vs the paper",
                [
                    ("GAC threshold", f"{PAPER['threshold']}", f"{PAPER['threshold']}"),
                    (
                        "statements selected",
                        f"{figures['statements_selected']} of {figures['statements_considered']}",
                        "not published as a count",
                    ),
                    (
                        "merges proposed",
                        f"{figures['merges_proposed']} ({figures['statements_merged']} statements)",
                        "manual",
                    ),
                    ("public principles", figures["public_principles"], PAPER["public_principles"]),
                    (
                        "overlap with standard (public covered)",
                        f"{figures['overlap_public_covered_by_standard']:.0%}",
                        "~50%",
                    ),
                    (
                        "overlap (standard covered by public)",
                        f"{figures['overlap_standard_covered_by_public']:.0%}",
                        "-",
                    ),
                    (
                        "  public covered at 0.5 / 0.55 / 0.65 / 0.7",
                        " / ".join(
                            f"{figures['overlap_curve'][k]:.0%}" for k in ("0.5", "0.55", "0.65", "0.7")
                        ),
                        "-",
                    ),
                    (
                        "  principles at merge sim. 0.5/.55/.6/.65/.7",
                        " / ".join(str(n) for n in figures["principles_by_merge_similarity"].values()),
                        "75 (merged by reading)",
                    ),
                    (
                        "public: promotes / avoids",
                        f"{figures['public_promotes_desired']:.0%} / "
                        f"{figures['public_avoids_undesired']:.0%}",
                        "promotes > avoids",
                    ),
                    (
                        "standard: promotes / avoids",
                        f"{figures['standard_promotes_desired']:.0%} / "
                        f"{figures['standard_avoids_undesired']:.0%}",
                        "(paper's standard: avoids more)",
                    ),
                ],
                ("figure", "ours", "paper"),
            )
            legal, _, merged = reproduce_avenue3(out_dir / "legal", embedder)
            rows = [
                (c, n, legal["principles_per_country"].get(c, "base"))
                for c, n in legal["per_country_principles"].items()
            ]
            _table("Avenue 3: principles from legal texts", rows, ("text", "principles", "in global merge"))
            out.print(
                f"global: {legal['global_principles']} principles; support counts "
                f"(countries: principles) {legal['support_counts']}; {legal['conflicts']} conflicts reported"
            )
            for conflict in merged.conflicts[:10]:
                out.print(
                    f"  conflict {conflict.a} {conflict.countries_a} vs {conflict.b} {conflict.countries_b}: "
                    f"{conflict.reason} (sim {conflict.similarity:.2f})",
                    highlight=False,
                )
            run.write_json("figures.json", {"ccai": figures, "avenue3": legal, "paper": PAPER})
            run.finish()

    @command(group, "merge")
    def merge(
        inputs: list[Path] = typer.Argument(..., help="Country constitutions (JSON/YAML)."),
        base: Path | None = typer.Option(None, "--base", help="Base constitution (e.g. the UDHR's)."),
        out_dir: Path = typer.Option(..., "--out", help="Output folder."),
        similarity: float = typer.Option(0.7, "--similarity", help="Cosine similarity to merge principles."),
        name: str = typer.Option("global", "--name"),
    ) -> None:
        """Merge country constitutions into one global constitution (avenue 1).

        Duplicates across countries become one principle listing its supporting countries (each input's
        metadata.country, else its name); conflicts (same topic, opposite direction, sources on both sides)
        are reported with their evidence and kept apart. The HTML has a country x principle support table.

        Example: ccai constitution merge us.json za.json in.json --base udhr.json --out runs/global
        """
        with user_errors():
            from ccai.constitution.merge import merge_constitutions
            from ccai.constitution.model import Constitution
            from ccai.constitution.study import write_all_formats
            from ccai.manifest import RunDir

            loaded = [Constitution.load(p) for p in inputs]
            base_c = Constitution.load(base) if base else None
            run = RunDir.create(
                out_dir,
                {"inputs": [str(p) for p in inputs], "base": str(base), "similarity": similarity},
                seed=None,
                inputs=[*inputs, *([base] if base else [])],
                stage="constitution",
            )
            result = merge_constitutions(loaded, base_c, _embedder(), similarity=similarity, name=name)
            write_all_formats(result.constitution, out_dir, name)
            run.write_json("conflicts.json", [c.__dict__ for c in result.conflicts])
            run.finish(principles=len(result.constitution), conflicts=len(result.conflicts))
            out.print(
                f"{len(result.constitution)} principles from {', '.join(result.countries)}; "
                f"support counts (countries: principles) {result.support_counts()}"
            )
            for c in result.conflicts:
                out.print(
                    f"conflict: {c.a} {c.countries_a} vs {c.b} {c.countries_b}: {c.reason}", highlight=False
                )

    @command(group, "from-text")
    def from_text_cmd(
        file: Path = typer.Argument(
            ..., help="A legal text: UDHR .jsonl, LII .json, markdown, or plain text."
        ),
        country: str = typer.Option(..., "--country", help="Country code, e.g. DE."),
        out_file: Path = typer.Option(..., "--out", help="Where to write (.json/.yaml/.md/.html)."),
        document: str | None = typer.Option(None, "--document", help="Document title for citations."),
        rewriter: str = typer.Option("rules", "--rewriter", help=REWRITER_HELP),
        model: str | None = typer.Option(None, "--model", help=MODEL_HELP),
        max_new_tokens: int = typer.Option(64, "--max-new-tokens", help="LM answer length limit (tokens)."),
        seed: int = typer.Option(0, "--seed", help="LM seed (decoding is greedy; the seed is recorded)."),
    ) -> None:
        """Candidate principles from a national constitution (avenue 3), each citing its article.

        Keeps provisions stating rights, duties or prohibitions on topics an assistant's answers touch
        (expression, belief, privacy, dignity, equality, safety, children, health, education, information,
        harmony), and rewrites them in the article's own words where a pattern allows.

        Example: ccai constitution from-text
        ../shared/data/constitutions/national/japan_1946_en_constitute.txt --country JP --out jp.json

        With --rewriter lm --model smollm2 a model rewords each principle from its clause (recorded).
        """
        with user_errors():
            from ccai.constitution.model import format_for
            from ccai.constitution.national import from_text

            format_for(out_file)  # an unknown output type is refused before any work
            _check_rewriter(rewriter, model)
            lm = _backend_lm(model, max_new_tokens, seed) if model else None
            with _lm_progress(lm):
                constitution = from_text(file, country, document, lm=lm)
            constitution.save(out_file)
            out.print(
                f"{len(constitution)} principles from {constitution.metadata['kept']} of "
                f"{constitution.metadata['provisions']} provisions -> {out_file}"
            )

    @command(group, "compare")
    def compare_cmd(
        a: Path = typer.Argument(..., help="Constitution A."),
        b: Path = typer.Argument(..., help="Constitution B (e.g. the standard one)."),
        threshold: float = typer.Option(0.6, "--threshold", help="Cosine similarity for a concept match."),
        html_out: Path | None = typer.Option(None, "--html", help="Write the HTML report here."),
    ) -> None:
        """Concept overlap of two constitutions: shares covered each way, matched pairs, tags side by side.

        Example: ccai constitution compare runs/public/public.json src/ccai/constitution/standard.json
        --html compare.html
        """
        with user_errors():
            from ccai.constitution.compare import compare
            from ccai.constitution.model import Constitution

            ca, cb = Constitution.load(a), Constitution.load(b)
            comparison = compare(ca, cb, _embedder(), threshold)
            s = comparison.summary()
            out.print(
                f"{ca.name} ({len(ca)}) covered by {cb.name}: {comparison.a_covered:.1%}; "
                f"{cb.name} ({len(cb)}) covered by {ca.name}: {comparison.b_covered:.1%} "
                f"(threshold {threshold}); {s['matched_pairs']} matched pairs"
            )
            rows = [(t, f"{x:.0%}", f"{y:.0%}") for t, (x, y) in comparison.tag_table().items() if x or y]
            _table("tags", rows, ("tag", ca.name, cb.name))
            from rich.markup import escape

            pairs = [
                (x, escape(xa), y, escape(yb), f"{sim:.3f}")
                for x, y, sim, xa, yb in comparison.matched_clauses()
            ]
            _table(
                "matched pairs (the clause of each that matched)",
                pairs,
                (ca.name, "clause", cb.name, "clause", "sim"),
            )
            if html_out:
                html_out.write_text(comparison.to_html())
                out.print(f"report: {html_out}")

    @command(group, "show")
    def show(
        file: Path = typer.Argument(..., help="A constitution file."),
        sources: bool = typer.Option(False, "--sources", help="List each principle's sources too."),
    ) -> None:
        """Print a constitution: name, version, hash and principles (--sources: where each came from).

        Example: ccai constitution show runs/public/public.json --sources
        """
        with user_errors():
            from rich.markup import escape

            from ccai.constitution.model import Constitution, _source_line

            c = Constitution.load(file)
            out.print(
                f"[bold]{escape(c.name)}[/] v{escape(c.version)} · {len(c)} principles · "
                f"hash {c.content_hash[:16]} · {escape(c.review_line())}",
                highlight=False,
            )
            for p in c.principles:  # participants' words are text, never rich markup ("[not] harmful")
                out.print(
                    f"[bold]{escape(p.id)}[/] {escape(p.comparison)} [dim]{escape(', '.join(p.tags))}[/]",
                    highlight=False,
                )
                if sources:
                    for s in p.sources:
                        out.print(f"    - {_source_line(s)}", highlight=False, markup=False)

    @command(group, "approve")
    def approve(
        file: Path = typer.Argument(..., help="The constitution (.json or .yaml) a person has read."),
        by: str = typer.Option(
            ..., "--by", help="Who approves it (recorded with the date and content hash)."
        ),
        note: str | None = typer.Option(None, "--note", help="A line on what was checked."),
    ) -> None:
        """Mark a constitution approved by a person: review.status 'approved' with who, when and its hash.

        Training and studies refuse constitutions that are not approved (Constitution.is_reviewed); any later
        change to a principle voids the approval. Refused while principles still need a person's wording.

        Example: ccai constitution approve runs/public/public.json --by "A. Organiser"
        """
        with user_errors():
            from ccai.constitution.model import Constitution

            approved = Constitution.load(file).approve(by=by, note=note)
            approved.save(file)
            out.print(f"{file}: {approved.review_line()} (content {approved.reviewed_content_hash[:16]})")

    @command(group, "stability")
    def stability(
        export: Path | None = typer.Option(
            None, "--export", help="A Polis export folder (default: the CCAI one under $CCAI_DATA_DIR)."
        ),
        votes_file: str = typer.Option(
            "clean_votes.csv", "--votes-file", help="Its participant-votes file (CCAI: the cleaned 1,002)."
        ),
        parts: int = typer.Option(3, "--parts", help="Random parts of the participants (3: thirds)."),
        consensus: str = typer.Option("geomean", "--consensus", help="'geomean' or 'gac' (the paper's)."),
        threshold: float | None = typer.Option(None, "--threshold", help="Threshold (default 0.85)."),
        count: int | None = typer.Option(None, "--count", help="Or: the threshold keeping N of the whole."),
        seed: int = typer.Option(0, "--seed", help="Seed of the split and of the clustering."),
        json_out: Path | None = typer.Option(None, "--json", help="Also write the figures as JSON here."),
    ) -> None:
        """Share of principles that survive resampling the same population (random parts re-analysed).

        Each part is analysed as a new consultation (groups re-clustered) and selected with the same rule;
        prints per part its groups, selection size, survival and Jaccard overlap with the whole.

        Example: ccai constitution stability --parts 3 --consensus geomean --threshold 0.85
        """
        with user_errors():
            import json

            from ccai.constitution.select import GEOMEAN_THRESHOLD
            from ccai.constitution.stability import participant_stability
            from ccai.datasets import dataset_path
            from ccai.formats.polis import read_polis_export

            if threshold is None and count is None:
                threshold = GEOMEAN_THRESHOLD if consensus == "geomean" else 0.723
            folder = export or dataset_path("ccai_polis")
            data = read_polis_export(folder, participants_votes=votes_file)
            result = participant_stability(
                data.votes,
                data.statements,
                parts=parts,
                consensus=consensus,
                threshold=threshold,
                count=count,
                seed=seed,
            )
            _table(
                f"stability over {parts} random parts ({consensus} >= {result.threshold:.3f}; whole: "
                f"{result.whole_groups} groups, {result.whole_selected} principles)",
                [
                    (p.part, p.participants, p.groups, p.selected, f"{p.survival:.2f}", f"{p.jaccard:.2f}")
                    for p in result.parts
                ],
                ("part", "participants", "groups", "selected", "survival", "jaccard"),
            )
            out.print(
                f"mean survival {result.mean_survival:.2f}; kept by a majority of parts "
                f"{result.majority_share:.2f}, by all {result.all_share:.2f}"
            )
            if json_out is not None:
                json_out.write_text(json.dumps(result.as_dict(), indent=2) + "\n")

    @command(group, "convert")
    def convert(
        source: Path = typer.Argument(
            ..., help="Input (.json, .yaml, .recipe.json), or the CAI paper's prompt folder."
        ),
        target: Path = typer.Argument(..., help="Output (.json, .yaml, .md, .html, .recipe.json)."),
    ) -> None:
        """Convert between formats (validates on the way; JSON gets its content hash).

        A folder is read as the CAI paper's published prompt files (critique/revision pairs, comparison
        principles, few-shot dialogues), so the paper's own setup can be run as a constitution.

        Example: ccai constitution convert public.yaml public.json

        Example: ccai constitution convert ../shared/data/ccai/cai_paper_prompts cai_paper.json
        """
        with user_errors():
            from ccai.constitution.model import Constitution, format_for, from_cai_paper

            format_for(target)
            c = from_cai_paper(source) if source.is_dir() else Constitution.load(source)
            c.save(target)
            out.print(f"{source} -> {target} ({len(c)} principles, hash {c.content_hash[:16]})")
