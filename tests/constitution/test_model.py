"""The Constitution object: formats, round trips, the hash, and refusing bad or hostile files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ccai.constitution import Constitution, ConstitutionError, Principle, StatementSource, model


def test_cai_paper_import(cai_paper: Constitution) -> None:
    assert len(cai_paper) == 16
    first = cai_paper.principles[0]
    assert first.critique_request.startswith("Identify specific ways")
    assert not first.critique_request.endswith("Critique:")
    assert first.revision_request.startswith("Please rewrite")
    assert not first.comparison.endswith("Options:")
    assert {s.principle_id for s in first.sources} == {"harmful0", "RLMadisonInstructions[0]"}
    assert len(cai_paper.metadata["few_shot"]["critique_revision"]) == 5


def test_round_trip_json_yaml_json_identical(cai_paper: Constitution, tmp_path: Path) -> None:
    cai_paper.save(tmp_path / "a.json")
    Constitution.load(tmp_path / "a.json").save(tmp_path / "b.yaml")
    Constitution.load(tmp_path / "b.yaml").save(tmp_path / "c.json")
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "c.json").read_bytes()
    assert Constitution.load(tmp_path / "c.json").content_hash == cai_paper.content_hash


def test_hash_changes_iff_content_changes(cai_paper: Constitution) -> None:
    same = Constitution.model_validate(json.loads(json.dumps(cai_paper.to_dict())))
    assert same.content_hash == cai_paper.content_hash
    # tag order carries no meaning
    reordered = cai_paper.model_copy(deep=True)
    reordered.principles[0].tags = list(reversed(reordered.principles[0].tags))
    assert reordered.content_hash == cai_paper.content_hash
    for change in (
        lambda c: setattr(c.principles[0], "comparison", c.principles[0].comparison + " "),
        lambda c: setattr(c, "version", "9"),
        lambda c: c.principles[1].sources.pop(),
        lambda c: c.principles.reverse(),
        lambda c: setattr(c.principles[2], "tags", ["lm-specific"]),
    ):
        changed = cai_paper.model_copy(deep=True)
        change(changed)
        assert changed.content_hash != cai_paper.content_hash


def test_all_formats_written(cai_paper: Constitution, tmp_path: Path) -> None:
    for suffix in ("json", "yaml", "md", "html", "recipe.json"):
        assert cai_paper.save(tmp_path / f"c.{suffix}").stat().st_size > 1000
    recipe = Constitution.load(tmp_path / "c.recipe.json")
    critiques = [p.critique_request for p in cai_paper.principles]
    assert [p.critique_request for p in recipe.principles] == critiques
    with pytest.raises(ConstitutionError, match="reading format"):
        Constitution.load(tmp_path / "c.md")


def test_shipped_schema_matches_model() -> None:
    shipped = json.loads(model.SCHEMA_PATH.read_text())
    assert shipped == model.json_schema()
    assert set(shipped["$defs"]["Principle"]["properties"]["tags"]["items"]["enum"]) == set(model.TAGS)


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


P0 = {"id": "a", "comparison": "c", "critique_request": "q", "revision_request": "r"}
GOOD = {"name": "x", "principles": [P0]}


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("bad.json", '{"name": "x",\n "principles": [\n}', r"bad.json: line 3, column 1: not valid JSON"),
        ("bad.yaml", "name: x\nprinciples: [\n  - {id: a\n", r"bad.yaml: line \d+, column \d+: not"),
        (
            "evil.yaml",
            "name: !!python/object/apply:os.system ['echo owned']\nprinciples: []\n",
            r"line 1, column 7: not valid YAML.*no !!python",
        ),
        ("bomb.yaml", "a: &a [x, x]\nb: &b [*a, *a]\nname: n\n", r"aliases .* not allowed"),
        ("list.json", "[1, 2]", r"expected a mapping"),
        (
            "types.yaml",
            "name: x\nprinciples:\n  - id: a\n    comparison: c\n    critique_request: q\n"
            "    revision_request: r\n    tags: [nice]\n",
            r"types.yaml: not a valid constitution: line 7, field principles.0.tags.0: Input should be",
        ),
        (
            "types.json",
            json.dumps({**GOOD, "principles": [{**P0, "sources": [{"kind": "statement"}]}]}, indent=1),
            r"field principles.0.sources.0.id: Field required",
        ),
        ("extra.json", json.dumps({**GOOD, "principals": []}), r"field principals: Extra inputs"),
        ("dup.json", json.dumps({**GOOD, "principles": GOOD["principles"] * 2}), r"duplicate .* 'a'"),
        (
            "badid.json",
            json.dumps({**GOOD, "principles": [{**P0, "id": "<b>"}]}),
            r"principles.0.id: String should match",
        ),
        (
            "blank.json",
            json.dumps({**GOOD, "principles": [{**P0, "comparison": "  "}]}),
            r"principles.0.comparison: Value error, must not be blank",
        ),
        ("c.txt", "{}", r"unknown file type"),
    ],
)
def test_bad_files_refused_clearly(tmp_path: Path, name: str, text: str, expected: str) -> None:
    with pytest.raises(ConstitutionError, match=expected):
        Constitution.load(_write(tmp_path, name, text))


def test_edited_json_hash_mismatch_refused(cai_paper: Constitution, tmp_path: Path) -> None:
    path = cai_paper.save(tmp_path / "c.json")
    path.write_text(path.read_text().replace("harmless", "harmful", 1))
    with pytest.raises(ConstitutionError, match="content_hash .* does not match"):
        Constitution.load(path)


def test_huge_and_binary_files_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(model, "MAX_FILE_BYTES", 1000)
    with pytest.raises(ConstitutionError, match="over the .* limit"):
        Constitution.load(_write(tmp_path, "big.json", json.dumps({**GOOD, "description": "x" * 2000})))
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe{}")
    with pytest.raises(ConstitutionError, match="not UTF-8"):
        Constitution.load(tmp_path / "bin.json")
    monkeypatch.undo()
    with pytest.raises(ConstitutionError, match="nested too deeply"):
        Constitution.load(_write(tmp_path, "deep.json", "[" * 100_000 + "]" * 100_000))
    with pytest.raises(FileNotFoundError, match="not found"):
        Constitution.load(tmp_path / "missing.json")


def test_html_escapes_participant_text(tmp_path: Path) -> None:
    evil = "<script>alert('x')</script> & <b>bold</b>"
    c = Constitution(
        name="<i>n</i>",
        principles=[
            Principle(
                id="p1",
                comparison=evil,
                critique_request=evil,
                revision_request="r",
                sources=[StatementSource(id="1", text=evil, agree=1, disagree=0, **{"pass": 0})],
            )
        ],
    )
    page = c.save(tmp_path / "c.html").read_text()
    assert "<script>alert" not in page and "<b>bold" not in page and "<i>n</i>" not in page
    assert "&lt;script&gt;" in page
