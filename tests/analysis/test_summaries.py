"""Per-group and per-topic summaries by a language model over HTTP: every kept sentence cites statements the
model was shown; the others are dropped and counted, in the tables, summary.json and the report.

The server here is a scripted stand-in for a remote OpenAI-compatible API (a mock of a remote API, on
loopback): it answers /v1/chat/completions with sentences built from the ids in the prompt, some valid and
some not, so the test knows exactly what must survive the check.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from ccai.analysis import analyze
from ccai.analysis.topics import add_topics, summarize_groups, summarize_topics


def scripted_server(silent_for: str | None = None):
    """An ASGI app answering chat completions: two cited sentences, one uncited, one citing an id it was
    not shown. A prompt containing ``silent_for`` gets only the invalid sentences."""

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        request = json.loads(body or b"{}")
        prompt = request["messages"][-1]["content"]
        ids = re.findall(r"^#(\d+) \(", prompt, flags=re.M)
        bad = "Everyone agrees on this. It rests on an unseen statement (#987654)."
        if silent_for is not None and silent_for in prompt:
            content = bad
        else:
            content = f"Most back the first point (#{ids[0]}). They also back (#{ids[1]}, #{ids[0]}). {bad}"
        reply = {
            "choices": [{"message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"completion_tokens": 20},
        }
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": json.dumps(reply).encode()})

    return app


@pytest.fixture()
def brexit(load_opendata):
    export = load_opendata("brexit-consensus")
    return analyze(export.votes, export.statements)


def test_group_summaries_keep_only_cited_sentences(brexit):
    from ccai.models.backends import make_backend
    from ccai.models.serve import BackgroundServer

    with BackgroundServer(scripted_server(silent_for="what sets Group B apart")) as url:
        table = summarize_groups(brexit, make_backend(f"openai:{url}#scripted"))
    assert list(table["label"]) == [f"Group {chr(65 + g)}" for g in range(brexit.k)]
    a, b = table.iloc[0], table.iloc[1]
    assert a["summary_kept"] == 2 and a["summary_dropped"] == 2
    first, second = a["statements"][:2]
    assert a["summary"] == f"Most back the first point (#{first}). They also back (#{second}, #{first})."
    assert b["summary"] == "" and b["summary_kept"] == 0 and b["summary_dropped"] == 2
    # what a group is shown: its representative statements first, then what it agrees with most
    rep = brexit.repness[brexit.repness["group"] == brexit.group_names[0]]["statement_id"].tolist()
    assert a["statements"][: len(rep)] == rep[: len(a["statements"])]
    assert brexit.statements.loc[a["statements"], "eligible"].all()
    assert brexit.summary()["group_summaries"][1]["summary_dropped"] == 2

    from ccai.analysis.report import render_report

    html = render_report(brexit)
    assert "The groups in words" in html and "Most back the first point" in html
    # a group with no valid sentence says so, with the counts, instead of an empty line
    assert "0 kept" in html and "so no summary is" in html


def test_topic_and_group_summaries_share_the_checker(brexit):
    from ccai.models.backends import make_backend
    from ccai.models.serve import BackgroundServer

    ids = brexit.eligible_statements().index.to_numpy()
    lookup = dict(zip(brexit.eligible_statements()["text"].astype(str), ids, strict=False))
    add_topics(brexit, 2, embed=lambda t: np.array([[1.0, 0.0] if lookup[x] < 25 else [0.0, 1.0] for x in t]))
    with BackgroundServer(scripted_server()) as url:
        topics = summarize_topics(brexit, make_backend(f"openai:{url}#scripted"), max_statements=5)
    assert (topics["summary_kept"] == 2).all() and (topics["summary_dropped"] == 2).all()


@pytest.mark.slow
def test_cli_writes_group_summaries(load_opendata, tmp_path: Path, shared_data: Path):
    from typer.testing import CliRunner

    from ccai.cli import app
    from ccai.models.serve import BackgroundServer

    folder = shared_data / "polis-opendata" / "london.youth.policing"
    with BackgroundServer(scripted_server()) as url:
        out = tmp_path / "run"
        done = CliRunner().invoke(app, ["analyze", str(folder), "--out", str(out), "--lm", f"openai:{url}#s"])
    assert done.exit_code == 0, done.output
    summary = json.loads((out / "summary.json").read_text())
    assert [g["summary_kept"] for g in summary["group_summaries"]] == [2] * summary["k"]
    assert (out / "group_summaries.csv").is_file()
    assert "The groups in words" in (out / "report.html").read_text()
