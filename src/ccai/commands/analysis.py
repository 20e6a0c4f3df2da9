"""CLI commands of the analysis stage (thin wrappers over `ccai.analysis`): `ccai analyze`, `ccai demo`."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import typer

from ccai.commands._common import command, console, user_errors


def _write_report(result, path: Path, paper=None) -> str:
    """Write report.html with ccai.analysis.report when that module exists; say what happened."""
    if importlib.util.find_spec("ccai.analysis.report") is None:
        return "report.html skipped: ccai.analysis.report is not available in this version"
    from ccai.analysis.report import write_report

    write_report(result, path, paper=paper)
    return f"wrote {path}"


def _summary_table(result, title: str):
    from rich.table import Table

    summary = result.summary()
    table = Table(title=title, show_header=False)
    counts = summary["counts"]
    table.add_row(
        "participants in analysis",
        f"{counts['participants_in_analysis']:,} (of {counts['participants_input']:,})",
    )
    table.add_row("statements (eligible)", f"{counts['statements_eligible']:,}")
    table.add_row("votes analysed", f"{counts['votes_in_analysis']:,}")
    table.add_row(
        "groups",
        f"{result.k} ({result.group_source}): "
        + ", ".join(f"{k}={v}" for k, v in summary["group_sizes"].items()),
    )
    sil = summary["ccai_clustering"]["silhouettes"]
    table.add_row("ccai k by silhouette", ", ".join(f"k={k}: {v:.3f}" for k, v in sil.items()))
    for variant, stats in summary["gac"].items():
        table.add_row(variant, " / ".join(f"{name} {value:.3f}" for name, value in stats.items()))
    table.add_row(
        "median PI / adjusted",
        f"{summary['pi_median']['pi']:.3f} / {summary['pi_median']['pi_adjusted']:.3f}",
    )
    for row in summary["agreement"]:
        table.add_row(
            f"agreement {row['a']} vs {row['b']}",
            f"ARI {row['ari']:.3f}, matched {row['matched_share']:.1%} of {row['n_common']:,}",
        )
    return table


def _read_given(path: Path, column: str | None):
    """participant -> group from a CSV with a `participant` column and a group column."""
    import pandas as pd

    try:
        table = pd.read_csv(path)
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot read as CSV ({exc})") from exc
    id_column = next((c for c in ("participant", "participant_id", "pid") if c in table.columns), None)
    if id_column is None:
        raise ValueError(
            f"{path}: expected a 'participant' column (participant id), got {list(table.columns)}"
        )
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
        comments: str | None = typer.Option(None, help="Use this file instead of comments.csv."),
        participants_votes: str | None = typer.Option(
            None, help="Use this file instead of participants-votes.csv (e.g. clean_votes.csv)."
        ),
        given_file: Path | None = typer.Option(
            None, help="CSV with participant + group columns for --groups given."
        ),
        given_column: str | None = typer.Option(None, help="Group column of --given-file."),
    ) -> None:
        """Find opinion groups and group-aware consensus in a Polis export.

        Writes OUT/statements.csv (counts, GAC variants, PI, priority, per-group counts), participants.csv,
        summary.json, repness.csv, agreement.csv, report.html and the run manifest.

        Example, the CCAI organisers' rules on the raw export:

        ccai analyze ../shared/data/ccai_polis --out runs/ccai --moderation accepted --more-than 25
        --exclude ../shared/data/ccai_polis/ids-to-toss.csv
        """
        with user_errors():
            from ccai.analysis import analyze
            from ccai.formats.polis import read_id_list, read_polis_export
            from ccai.manifest import RunDir

            with console.status("reading the export"):
                export = read_polis_export(path, comments=comments, participants_votes=participants_votes)
            excluded = read_id_list(exclude) if exclude is not None else []
            export_groups = export.participants["group_id"]
            given = _read_given(given_file, given_column) if given_file is not None else None
            if groups.strip().lower() == "given" and given is None:
                if export_groups.dropna().empty:
                    raise ValueError(
                        f"{path}: --groups given needs a group-id column in the participants file "
                        "or --given-file"
                    )
                given = export_groups
            custom_matrix = participants_votes is not None
            config = {
                "path": str(path),
                "groups": groups,
                "exclude": str(exclude) if exclude else None,
                "min_votes": min_votes,
                "more_than": more_than,
                "moderation": moderation,
                "straightliners": straightliners,
                "seed": seed,
                "comments": comments,
                "participants_votes": participants_votes,
                "given_file": str(given_file) if given_file else None,
                "given_column": given_column,
            }
            inputs = [path] + ([exclude] if exclude else []) + ([given_file] if given_file else [])
            with console.status("analysing"):
                result = analyze(
                    export.votes,
                    export.statements,
                    groups=groups,
                    given_groups=given,
                    reference_groups=None if custom_matrix else export_groups,
                    labelings={"file_group_id": export_groups} if custom_matrix else None,
                    exclude=excluded,
                    min_votes=min_votes,
                    more_than=more_than,
                    moderation=moderation,
                    straightliners=straightliners,
                    seed=seed,
                )
            run = RunDir.create(out, config, seed=seed, inputs=inputs, stage="analysis")
            for step in result.filters:
                run.log("filter", **step.summary())
            result.to_dir(run.path)
            message = _write_report(result, run.path / "report.html")
            run.log("report", message=message)
            run.finish(input_hash=result.input_hash, k=result.k)
            console.print(_summary_table(result, f"ccai analyze {path}"))
            console.print(f"{message}\nwrote {run.path}/statements.csv, participants.csv, summary.json")

    @command(app, "demo", no_args_is_help=False)
    def demo_cmd(
        out: Path = typer.Option(Path("runs/demo"), "--out", "-o", help="Folder for the analyses."),
        seed: int = typer.Option(0, help="Seed of the SVD start vector."),
    ) -> None:
        """Reproduce the CCAI consultation's analysis from its public Pol.is data (no network).

        Writes four run directories under OUT: `published/` (the organisers' cleaned votes and their
        published group labels: the paper's figures), `realigned/` (the same labels put back on the right
        participants), `own/` (ccai's own Polis-style clustering of the raw export under the organisers'
        rules, k by silhouette) and `own_k2/` (the same with k=2, as Polis had), then prints the paper's
        figures next to the recomputed ones and how the labelings agree.

        Example: ccai demo --out runs/demo
        """
        with user_errors():
            import pandas as pd
            from rich.table import Table

            from ccai.analysis import CCAI_PAPER, CCAI_REALIGNED, analyze
            from ccai.analysis.paper import CCAI_ORGANISER_RULES, paper_figures
            from ccai.datasets import dataset_path
            from ccai.formats.polis import read_id_list, read_polis_export
            from ccai.manifest import RunDir

            folder = dataset_path("ccai_polis")
            groups_csv = dataset_path("ccai", "ccai_participant_groups.csv")
            with console.status("reading the CCAI export"):
                raw = read_polis_export(folder)
                clean = read_polis_export(folder, participants_votes="clean_votes.csv")
                labels = pd.read_csv(groups_csv).set_index("participant")
                toss = read_id_list(folder / "ids-to-toss.csv")
            polis = raw.participants["group_id"]
            published_labels = clean.participants["group_id"]
            runs = {
                "published": dict(
                    votes=clean,
                    groups="given",
                    given_groups=published_labels,
                    labelings={"realigned": labels["group_realigned"]},
                ),
                "realigned": dict(
                    votes=clean,
                    groups="given",
                    given_groups=labels["group_realigned"],
                    labelings={"published": published_labels},
                ),
                "own": dict(
                    votes=raw,
                    groups="polis",
                    exclude=toss,
                    **CCAI_ORGANISER_RULES,
                    labelings={"published": published_labels, "realigned": labels["group_realigned"]},
                ),
                "own_k2": dict(
                    votes=raw,
                    groups=2,
                    exclude=toss,
                    **CCAI_ORGANISER_RULES,
                    labelings={"published": published_labels, "realigned": labels["group_realigned"]},
                ),
            }
            results = {}
            for name, spec in runs.items():
                export = spec.pop("votes")
                with console.status(f"analysing: {name}"):
                    result = analyze(
                        export.votes, export.statements, reference_groups=polis, seed=seed, **spec
                    )
                run = RunDir.create(
                    out / name,
                    {"demo": name, "seed": seed},
                    seed=seed,
                    inputs=[folder, groups_csv],
                    stage="analysis",
                )
                result.to_dir(run.path)
                paper = CCAI_PAPER if name == "published" else None  # the others are not the paper's figures
                message = _write_report(result, run.path / "report.html", paper=paper)
                run.log("report", message=message)
                run.finish(input_hash=result.input_hash, k=result.k)
                results[name] = result

            table = Table(title="CCAI: paper vs recomputed")
            for column in (
                "figure",
                "paper",
                "published groups",
                "realigned (reference)",
                "realigned",
                "ccai own",
                "ccai k=2",
            ):
                table.add_column(column, no_wrap=column == "figure")
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
            pairs = Table(title="Agreement between labelings (participants labelled by both)")
            for column in ("a", "b", "n", "ARI", "matched"):
                pairs.add_column(column)
            for row in agreement.itertuples():
                pairs.add_row(row.a, row.b, f"{row.n_common:,}", f"{row.ari:.3f}", f"{row.matched_share:.1%}")
            console.print(pairs)
            console.print(
                f"ccai own clustering: k={results['own'].k} (silhouettes "
                + ", ".join(f"k={k}: {v:.3f}" for k, v in results["own"].silhouettes.items())
                + f"); wrote {out}/published, realigned, own, own_k2"
            )


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and not float(value).is_integer():
        return f"{value:.3f}"
    return f"{int(value):,}" if float(value).is_integer() else str(value)
