"""CLI commands of the analysis stage (thin wrappers over `ccai.analysis`): `analyze`, `reproduce`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

from ccai.analysis.paper import CCAI_THRESHOLD
from ccai.commands._common import command, console, user_errors, without_cycle_collection


@contextmanager
def _steps(total: int) -> Iterator[Callable[[str], None]]:
    """A progress bar over ``total`` named steps: ``step(label)`` closes the previous step, opens the next."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(
        TextColumn("{task.description:<36}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    with progress:
        task = progress.add_task("", total=total)
        opened = False

        def step(label: str) -> None:
            nonlocal opened
            progress.update(task, description=label, advance=1 if opened else 0)
            opened = True

        yield step
        progress.update(task, completed=total)


def _check_out(out: Path) -> None:
    """Refuse an output path that is a file before any work is done."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out}: exists and is not a folder; choose another output folder")


def _summary_table(result, title: str):
    from rich.table import Table

    summary = result.summary()
    table = Table(title=title, show_header=False)
    counts = summary["counts"]
    table.add_row(
        "participants in analysis",
        f"{counts['participants_in_analysis']:,} (of {counts['participants_input']:,})",
    )
    for step in summary["filters"]:
        removed = [
            f"{step[key]:,} {what}"
            for key, what in (
                ("participants_removed", "not clustered" if step["name"] == "min_votes" else "participants"),
                ("statements_removed", "statements dropped"),
                ("statements_zeroed", "statements zeroed"),
            )
            if step[key]
        ]
        table.add_row(f"filter {step['name']}", ", ".join(removed) or "removed nothing")
    table.add_row("statements (eligible)", f"{counts['statements_eligible']:,}")
    table.add_row("votes analysed", f"{counts['votes_in_analysis']:,}")
    table.add_row(
        "groups",
        f"{result.k} ({result.group_source}): "
        + ", ".join(f"{k}={v}" for k, v in summary["group_sizes"].items()),
    )
    sil = summary["ccai_clustering"]["silhouettes"]
    tie = summary["ccai_clustering"]["near_tie"]
    table.add_row(
        "ccai k by silhouette",
        ", ".join(f"k={k}: {v:.3f}" for k, v in sil.items())
        + (f" (near tie with k={', '.join(map(str, tie))})" if tie else ""),
    )
    replay = summary["ccai_clustering"].get("replay")
    if replay:
        table.add_row(
            "replayed updates",
            f"{replay['updates']:,} of {replay['tick_seconds']:g} s: k {replay['k']} shown "
            + (
                f"since {replay['k_shown_since'][:16]} (last update's best {replay['last_update_best_k']}), "
                if replay["k_decided"]
                else f"(undecided in {replay['updates_clustered']} updates: batch k kept), "
            )
            + f"{replay['in_conv']:,} clustered (sticky)",
        )
    for variant, stats in summary["gac"].items():
        table.add_row(variant, " / ".join(f"{name} {_f3(value)}" for name, value in stats.items()))
    table.add_row(
        "median PI / adjusted",
        f"{_f3(summary['pi_median']['pi'])} / {_f3(summary['pi_median']['pi_adjusted'])}",
    )
    cert = summary.get("certificate")
    if cert:
        table.add_row(
            f"selection certificates ({cert['rule']})",
            f"{cert['selected_95']} of {cert['n_selected']} selected in >= 95 % of {cert['n_boot']} "
            f"resamples; {cert['uncertain_5_95']} statements uncertain (5-95 %)",
        )
        if cert["margin_min"] is not None:
            checked = cert["margin_verified"]
            table.add_row(
                "brigading margin (min)",
                f"{cert['margin_min']} bloc participants push #{cert['margin_statement']} out"
                + (f" ({checked} with re-clustering)" if checked is not None else ""),
            )
    for row in summary["agreement"]:
        table.add_row(
            f"agreement {row['a']} vs {row['b']}",
            f"ARI {row['ari']:.3f}, matched {row['matched_share']:.1%} of {row['n_common']:,}",
        )
    return table


def _warn_about_given(result) -> None:
    """Warn when given labels agree with another labeling only at chance level (likely a row-order fault)."""
    from ccai.analysis.report import CHANCE_ARI

    for row in result.agreement.itertuples():
        if "given" in (row.a, row.b) and row.ari < CHANCE_ARI:
            other = row.b if row.a == "given" else row.a
            console.print(
                f"[bold yellow]warning:[/] the given groups agree with {other!r} only at chance level "
                f"(ARI {row.ari:.3f}); check that the labels sit on the right participants"
            )


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the `ccai` app."""

    @command(app, "analyze")
    def analyze_cmd(
        path: Path = typer.Argument(
            ..., help="Polis export folder (comments.csv, votes.csv and/or participants-votes.csv)."
        ),
        out: Path = typer.Option(..., "--out", "-o", help="Run directory to write."),
        groups: str = typer.Option(
            "polis",
            help="'polis' (k by silhouette, as Polis), 'given' (the export's "
            "group-id, or --given-file), 'k=N' to force N groups, or 'hdbscan' (density-based, "
            "k found from the data, outliers left ungrouped).",
        ),
        exclude: Path | None = typer.Option(
            None,
            help="File of participant ids to drop, one per line (e.g. the CCAI organisers' ids-to-toss.csv).",
        ),
        min_votes: int = typer.Option(
            7, help="Polis's clustering rule: cluster participants with at least min(N, n_statements) votes."
        ),
        more_than: int | None = typer.Option(
            None, help="Keep only participants with more than N votes (the CCAI organisers used 25)."
        ),
        moderation: str = typer.Option(
            "polis",
            help="'polis': rejected/meta statements become all-zero "
            "columns; 'accepted': keep moderator-accepted statements only.",
        ),
        straightliners: bool = typer.Option(
            False, help="Drop participants who voted the same way on every statement (>= 5 votes)."
        ),
        seed: int = typer.Option(0, help="Seed of the SVD start vector."),
        history: str = typer.Option(
            "batch",
            help="'batch' (one analysis of the final votes) or 'replay': replay votes.csv in time order "
            "through updates, keeping Polis's sticky clustered set and its k smoother (a new k must win 4 "
            "updates in a row).",
        ),
        tick_seconds: float = typer.Option(60.0, help="With --history replay: seconds per update."),
        comments: str | None = typer.Option(None, help="Use this file instead of comments.csv."),
        participants_votes: str | None = typer.Option(
            None, help="Use this file instead of participants-votes.csv (e.g. clean_votes.csv)."
        ),
        given_file: Path | None = typer.Option(
            None, help="CSV with participant + group columns for --groups given."
        ),
        given_column: str | None = typer.Option(None, help="Group column of --given-file."),
        certificates: int = typer.Option(
            0,
            help="Bootstrap resamples (e.g. 200) for selection certificates: per statement, the share of "
            "resamples of the participants, re-clustered, in which it passes GAC >= --threshold; also "
            "computes brigading margins. 0 = off.",
        ),
        threshold: float = typer.Option(CCAI_THRESHOLD, help="GAC selection threshold for --certificates."),
        topics: int = typer.Option(
            0,
            help="Group statements into N topics (bundled MiniLM embeddings, named by distinctive words); "
            "-1 = choose N from the number of statements; 0 = off.",
        ),
        lm: str | None = typer.Option(
            None,
            help="A language model that writes a short summary per opinion group (and per topic with "
            "--topics), every sentence citing statement ids (checked; sentences without a valid citation "
            "dropped and counted). 'smollm2' (bundled) or "
            "'openai:<base_url>#<model>' (any OpenAI-compatible server).",
        ),
    ) -> None:
        """Find opinion groups and group-aware consensus in a Polis export.

        Reads a Polis export folder (either generation), clusters participants
        as Polis does (or takes --groups given / k=N), and scores every
        statement: GAC variants, polarization, representativeness, priority.

        Writes a run folder OUT with statements.csv, participants.csv,
        summary.json, repness.csv, agreement.csv, report.html (open it in a
        browser, works offline) and the run manifest.

        Examples:

          ccai analyze ../shared/data/polis-opendata/bg2050-volunteers --out runs/bg

        The CCAI organisers' rules on the raw CCAI export:

          ccai analyze ../shared/data/ccai_polis --out runs/ccai
          --moderation accepted --more-than 25
          --exclude ../shared/data/ccai_polis/ids-to-toss.csv
        """
        with user_errors(), without_cycle_collection():
            from ccai.analysis.stage import AnalysisConfig, run

            config = AnalysisConfig(
                groups=groups, exclude=str(exclude) if exclude else None, min_votes=min_votes,
                more_than=more_than, moderation=moderation, straightliners=straightliners, seed=seed,
                comments=comments, participants_votes=participants_votes,
                given_file=str(given_file) if given_file else None, given_column=given_column,
                certificates=certificates, threshold=threshold, topics=topics or None, lm=lm,
                history=history, tick_seconds=tick_seconds,
            )
            with _steps(3 + (certificates > 0) + bool(topics) + bool(lm)) as step:
                result = run(config, path, out, step=step)
            console.print(_summary_table(result, f"ccai analyze {path}"))
            for warning in result.warnings:
                console.print(f"[bold yellow]warning:[/] {warning}")
            _warn_about_given(result)
            console.print(f"wrote {out}: statements.csv, participants.csv, summary.json, report.html")

    @command(app, "reproduce", no_args_is_help=False)
    def reproduce_cmd(
        out: Path = typer.Option(Path("runs/reproduce"), "--out", "-o", help="Folder for the analyses."),
        seed: int = typer.Option(0, help="Seed of the SVD start vector."),
    ) -> None:
        """Reproduce the CCAI consultation's analysis from its public Pol.is data.

        Needs no network: reads ccai_polis and ccai under $CCAI_DATA_DIR.
        Writes four run folders under OUT, each with its report.html:

        published/  the organisers' cleaned votes and published group labels:
        the paper's figures (275 statements, 1,002 people, 116 above 0.723).

        realigned/  the same labels put back on the right participants.

        own/  ccai's own Polis-style clustering of the raw export under the
        organisers' rules (k by silhouette); own_k2/  the same with k = 2.

        Then prints the paper's figures next to the recomputed ones and how
        every pair of labelings agrees (ARI).

        Example: ccai reproduce --out runs/reproduce
        """
        with user_errors():
            import pandas as pd
            from rich import box
            from rich.table import Table

            from ccai.analysis import CCAI_PAPER, CCAI_REALIGNED, analyze
            from ccai.analysis.paper import CCAI_ORGANISER_RULES, paper_figures
            from ccai.analysis.report import report_writer
            from ccai.datasets import dataset_path
            from ccai.formats.polis import read_id_list, read_polis_export

            _check_out(out)
            folder = dataset_path("ccai_polis")
            groups_csv = dataset_path("ccai", "ccai_participant_groups.csv")
            names = ("published", "realigned", "own", "own_k2")
            results = {}
            with _steps(1 + 2 * len(names)) as step:
                step("reading the CCAI export")
                raw = read_polis_export(folder)
                clean = read_polis_export(folder, participants_votes="clean_votes.csv")
                toss = read_id_list(folder / "ids-to-toss.csv")
                published = clean.participants["group_id"]  # the organisers' labels, as published
                realigned = pd.read_csv(groups_csv).set_index("participant")["group_realigned"]
                rules = dict(exclude=toss, **CCAI_ORGANISER_RULES)
                both = {"published": published, "realigned": realigned}
                runs = {  # name: (export, analysis options, labelings to compare)
                    "published": (
                        clean,
                        {"groups": "given", "given_groups": published},
                        {"realigned": realigned},
                    ),
                    "realigned": (
                        clean,
                        {"groups": "given", "given_groups": realigned},
                        {"published": published},
                    ),
                    "own": (raw, dict(groups="polis", **rules), both),
                    "own_k2": (raw, dict(groups=2, **rules), both),
                }
                for name in names:
                    export, options, labelings = runs[name]
                    step(f"analysing: {name}")
                    result = analyze(
                        export.votes,
                        export.statements,
                        reference_groups=raw.participants["group_id"],
                        labelings=labelings,
                        seed=seed,
                        **options,
                    )
                    step(f"writing {name}/ and its report")
                    result.save(
                        out / name,
                        inputs=[folder, groups_csv],
                        config={"reproduce": name, "seed": seed},
                        # the paper's figures only beside the published labels; the others are not the paper's
                        report=report_writer(paper=CCAI_PAPER if name == "published" else None),
                    )
                    results[name] = result

            table = Table(title="CCAI: paper vs recomputed", box=box.SIMPLE_HEAD, pad_edge=False)
            headers = ("figure", "paper", "published\ngroups", "realigned\n(ref.)", "realigned", "ccai\nown")
            for column in (*headers, "ccai\nk=2"):
                table.add_column(column, no_wrap=True, justify="left" if column == "figure" else "right")
            figures = {name: paper_figures(result) for name, result in results.items()}
            for key, value in CCAI_PAPER.items():
                table.add_row(
                    key,
                    _fmt(value),
                    _fmt(figures["published"][key]),
                    _fmt(CCAI_REALIGNED.get(key)),
                    _fmt(figures["realigned"][key]),
                    _fmt(figures["own"][key]),
                    _fmt(figures["own_k2"][key]),
                )
            console.print(table)
            forced = results["own_k2"].agreement
            forced = forced[(forced["a"] == "ccai") | (forced["b"] == "ccai")].replace({"ccai": "ccai k=2"})
            agreement = pd.concat([results["own"].agreement, forced], ignore_index=True)
            pairs = Table(
                title="Agreement between labelings (participants both label)",
                box=box.SIMPLE_HEAD,
                pad_edge=False,
            )
            for column in ("a", "b", "n", "ARI", "matched"):
                pairs.add_column(column)
            for row in agreement.itertuples():
                pairs.add_row(row.a, row.b, f"{row.n_common:,}", f"{row.ari:.3f}", f"{row.matched_share:.1%}")
            console.print(pairs)
            console.print(
                "group sizes: "
                + "; ".join(
                    f"{name} "
                    + ", ".join(f"{chr(65 + i)}={n:,}" for i, n in enumerate(r.group_sizes().values()))
                    for name, r in results.items()
                )
                + "\n"
                f"ccai own clustering: k={results['own'].k} (silhouettes "
                + ", ".join(f"k={k}: {v:.3f}" for k, v in results["own"].silhouettes.items())
                + f")\nwrote {out}/published, realigned, own, own_k2; open {out}/published/report.html"
            )


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and not float(value).is_integer():
        return f"{value:.3f}"
    return f"{int(value):,}" if float(value).is_integer() else str(value)


def _f3(value) -> str:
    """Three decimals, or '–' for an undefined figure (the warnings above say why)."""
    return "–" if value is None or value != value else f"{value:.3f}"
