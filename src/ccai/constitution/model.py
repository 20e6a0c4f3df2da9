"""The constitution object: principles with provenance, versioned and content-hashed.

A :class:`Constitution` is a named, versioned list of :class:`Principle`. Each principle carries the three
texts Constitutional AI needs (a comparison principle for AI feedback, a critique request and a revision
request for the supervised stage), tags from a fixed vocabulary, and its *sources*: the consultation
statements, legal articles or base-set principles it was made from. Provenance is a field, not a log line,
so every training example can be traced back to the public's words.

Files (chosen by suffix, see :data:`FORMATS`):

* ``.json``  the exchange format; validated against :data:`SCHEMA_PATH` (generated from these models);
* ``.yaml``  the same content for people to edit;
* ``.md`` / ``.html``  to read (write only);
* ``.recipe.json``  the ``{"constitutions": [{"critic", "revision"}]}`` list of the open CAI recipes (lossy).

Loading refuses malformed or hostile files with one message naming the file, the line and the field path.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

FORMAT_NAME = "ccai-constitution"
FORMAT_VERSION = 1
SCHEMA_PATH = Path(__file__).with_name("constitution.schema.json")

#: Files bigger than this are refused before parsing (a constitution is kilobytes; the CCAI one ~100 kB).
MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_TEXT_CHARS = 20_000
MAX_PRINCIPLES = 20_000

#: The fixed tag vocabulary. The first seven are the codes the CCAI paper used to compare the public and the
#: standard constitutions; the rest are topics used by the rule-based tagger and the conflict finder.
PAPER_TAGS: tuple[str, ...] = (
    "promotes-desired",
    "avoids-undesired",
    "rights-respect",
    "lm-specific",
    "existential-risk",
    "potentially-controversial",
    "inspired-by-standard",
)
TOPIC_TAGS: tuple[str, ...] = (
    "harm-avoidance",
    "honesty",
    "non-discrimination",
    "privacy",
    "helpfulness",
    "autonomy",
    "transparency",
    "collective-good",
    "individual-rights",
)
TAGS: tuple[str, ...] = PAPER_TAGS + TOPIC_TAGS
Tag = Literal[TAGS]  # type: ignore[valid-type]

_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,127}$"
Text = Annotated[str, Field(max_length=MAX_TEXT_CHARS)]


class ConstitutionError(ValueError):
    """A constitution file or object is malformed; the message says what, where, and what was expected."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, validate_assignment=True)


class StatementSource(_Strict):
    """A consultation statement a principle was made from, with the votes that selected it."""

    kind: Literal["statement"] = "statement"
    id: str = Field(min_length=1, max_length=200, description="statement id in its consultation")
    text: Text
    consultation: str | None = Field(None, description="which consultation (e.g. 'ccai-us-2023')")
    country: str | None = None
    gac: float | None = Field(None, ge=0.0, le=1.0, description="group-aware consensus")
    agree: int | None = Field(None, ge=0)
    disagree: int | None = Field(None, ge=0)
    pass_: int | None = Field(None, ge=0, alias="pass")
    group_agree: dict[str, float] = Field(default_factory=dict, description="agree rate per opinion group")


class ArticleSource(_Strict):
    """An article (or section, clause) of a legal text such as a national constitution or the UDHR."""

    kind: Literal["article"] = "article"
    document: str = Field(min_length=1, max_length=500)
    article: str = Field(min_length=1, max_length=200, description="citation, e.g. 'Article 19' or '§ 16(1)'")
    text: Text
    country: str | None = None


class BaseSource(_Strict):
    """A principle of another constitution (a base set, the standard constitution, the CAI paper's files)."""

    kind: Literal["base"] = "base"
    constitution: str = Field(min_length=1, max_length=500)
    principle_id: str = Field(min_length=1, max_length=200)
    text: Text
    country: str | None = None


Source = Annotated[StatementSource | ArticleSource | BaseSource, Field(discriminator="kind")]


class Principle(_Strict):
    """One principle in the three forms Constitutional AI uses, with its tags and sources."""

    id: str = Field(pattern=_ID_PATTERN, description="stable id, unique within the constitution")
    comparison: Text = Field(min_length=1, description="AI-feedback form: 'Choose the response that ...'")
    critique_request: Text = Field(min_length=1)
    revision_request: Text = Field(min_length=1)
    tags: list[Tag] = Field(default_factory=list)  # type: ignore[valid-type]
    sources: list[Source] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict, description="how it was made: rules, merges")
    # where constitutions went after 2023 (an explicit order, hard limits, a reason per principle): all
    # optional, left out of the file (and the hash) when unset, so older constitutions keep their hashes
    priority: int | None = Field(None, ge=1, description="1 = first; lower numbers win when principles clash")
    hard_constraint: bool | None = Field(
        None, description="true: never traded off against helpfulness (a line, not a preference)"
    )
    rationale: Text | None = Field(None, description="why the principle is there, in a sentence or two")
    weight: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="how strongly it is supported (e.g. its consensus); training may "
        "sample principles in proportion to it",
    )

    @field_validator("comparison", "critique_request", "revision_request")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value

    @field_validator("tags")
    @classmethod
    def _tags_sorted(cls, value: list[str]) -> list[str]:
        # Order carries no meaning; sorting keeps the hash independent of it.
        return sorted(set(value))

    def countries(self) -> list[str]:
        """Countries named by this principle's sources (support in a global constitution)."""
        return sorted({s.country for s in self.sources if s.country})


#: principle fields written only when set (keeps the content hash of files made before they existed)
OPTIONAL_PRINCIPLE_FIELDS = ("priority", "hard_constraint", "rationale", "weight")


class ReviewStatus(_Strict):
    """Whether a person has read and approved this constitution, who, when, and what exactly they approved.

    ``content_hash`` is the hash of everything but this block (:attr:`Constitution.reviewed_content_hash`):
    an approval stops counting the moment a principle changes.
    """

    status: Literal["draft", "approved"] = "draft"
    by: str | None = Field(None, max_length=200, description="who approved it")
    at: str | None = Field(None, max_length=40, description="when (ISO 8601 date or time)")
    content_hash: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")
    note: str | None = Field(None, max_length=MAX_TEXT_CHARS)


class Constitution(_Strict):
    """A versioned, content-hashed list of principles. ``content_hash`` identifies it across stages."""

    format: Literal["ccai-constitution"] = FORMAT_NAME
    format_version: Literal[1] = FORMAT_VERSION
    name: str = Field(min_length=1, max_length=200)
    version: str = Field("1.0.0", pattern=r"^[0-9A-Za-z.+\-]{1,40}$")
    description: str = Field("", max_length=MAX_TEXT_CHARS)
    principles: list[Principle] = Field(default_factory=list, max_length=MAX_PRINCIPLES)
    metadata: dict[str, Any] = Field(default_factory=dict)
    review: ReviewStatus | None = Field(
        None, description="draft or approved by a person; training refuses constitutions not approved"
    )

    @model_validator(mode="after")
    def _unique_ids(self) -> Constitution:
        seen: set[str] = set()
        for index, principle in enumerate(self.principles):
            if principle.id in seen:
                raise ValueError(f"principles.{index}.id: duplicate principle id {principle.id!r}")
            seen.add(principle.id)
        return self

    # ---- identity -------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready content (no hash); optional fields that are unset are left out."""
        data = self.model_dump(mode="json", by_alias=True)
        if data.get("review") is None:
            data.pop("review", None)
        for principle in data["principles"]:
            for name in OPTIONAL_PRINCIPLE_FIELDS:
                if principle.get(name) is None:
                    principle.pop(name, None)
        return data

    @property
    def reviewed_content_hash(self) -> str:
        """sha256 of the content without the review block: what an approval refers to."""
        data = self.to_dict()
        data.pop("review", None)
        canonical = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    @property
    def is_reviewed(self) -> bool:
        """True only when a person approved exactly this content (``review.status == 'approved'`` and the
        approval's hash matches). Training and studies refuse a constitution for which this is False."""
        review = self.review
        return bool(
            review is not None
            and review.status == "approved"
            and review.by
            and review.content_hash == self.reviewed_content_hash
        )

    def needing_wording(self) -> list[str]:
        """Ids of principles whose statement the rules could not rewrite (placeholder text, to be worded)."""
        return [
            p.id
            for p in self.principles
            if isinstance(p.metadata.get("rewrite"), dict) and p.metadata["rewrite"].get("needs_wording")
        ]

    def approve(self, by: str, at: str | None = None, note: str | None = None) -> Constitution:
        """A copy marked approved by ``by`` (a person); refused while principles still need a wording."""
        if not by or not by.strip():
            raise ConstitutionError("approve: say who approves it (by=NAME)")
        waiting = self.needing_wording()
        if waiting:
            raise ConstitutionError(
                f"{self.name}: {len(waiting)} principle(s) still need a person's wording "
                f"({', '.join(waiting[:5])}{', ...' if len(waiting) > 5 else ''}); word them in the review "
                "file (wordings section) and build again before approving"
            )
        if at is None:
            from datetime import UTC, datetime

            at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        review = ReviewStatus(
            status="approved", by=by.strip(), at=at, content_hash=self.reviewed_content_hash, note=note
        )
        return self.model_copy(update={"review": review})

    def review_line(self) -> str:
        """One line for pages and reports: approved by whom, or 'not reviewed by a person'."""
        if self.is_reviewed and self.review is not None:
            return f"approved by {self.review.by} on {self.review.at}"
        if self.review is not None and self.review.status == "approved":
            return "approval no longer valid: the content changed after it was approved (not reviewed)"
        return "draft: not reviewed by a person"

    @property
    def content_hash(self) -> str:
        """sha256 of the canonical JSON of the whole content: changes when, and only when, content changes."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def __len__(self) -> int:
        return len(self.principles)

    def principle(self, principle_id: str) -> Principle:
        for principle in self.principles:
            if principle.id == principle_id:
                return principle
        raise KeyError(f"no principle {principle_id!r} in constitution {self.name!r}")

    def tag_shares(self) -> dict[str, float]:
        """Share of principles carrying each tag (every vocabulary tag, 0.0 when absent)."""
        n = len(self.principles) or 1
        return {tag: sum(tag in p.tags for p in self.principles) / n for tag in TAGS}

    # ---- files ----------------------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Any, source: str = "<data>", text: str | None = None) -> Constitution:
        """Validate ``data``; errors name ``source``, the field path and (given ``text``) the line."""
        if not isinstance(data, dict):
            raise ConstitutionError(
                f"{source}: expected a mapping with 'name' and 'principles' at the top level, "
                f"got {type(data).__name__}"
            )
        data = dict(data)
        stored_hash = data.pop("content_hash", None)
        try:
            constitution = cls.model_validate(data)
        except ValidationError as exc:
            raise ConstitutionError(_describe(exc, source, text)) from None
        if stored_hash is not None and stored_hash != constitution.content_hash:
            raise ConstitutionError(
                f"{source}: content_hash {str(stored_hash)[:16]}... does not match the content "
                f"({constitution.content_hash[:16]}...): the file was changed after it was written. Edit the "
                "YAML form instead, or delete the 'content_hash' line to accept the change."
            )
        return constitution

    @classmethod
    def load(cls, path: Path | str) -> Constitution:
        """Read a ``.json``, ``.yaml``/``.yml`` or ``.recipe.json`` file."""
        path = Path(path)
        fmt = format_for(path)
        if fmt in ("md", "html"):
            raise ConstitutionError(f"{path}: {fmt} is a reading format; load the .json or .yaml file")
        text = _read_text(path)
        if fmt == "yaml":
            data = _parse_yaml(text, str(path))
        else:
            data = _parse_json(text, str(path))
            if fmt == "recipe" or _looks_like_recipe(data):
                return from_recipe(data, source=str(path))
        return cls.from_dict(data, source=str(path), text=text)

    def save(self, path: Path | str, fmt: str | None = None) -> Path:
        """Write in the format the suffix names (or ``fmt``); written whole via a temp file, never half."""
        path = Path(path)
        fmt = fmt or format_for(path)
        writers = {
            "json": self.to_json,
            "yaml": self.to_yaml,
            "md": self.to_markdown,
            "html": self.to_html,
            "recipe": lambda: json.dumps(to_recipe(self), indent=2, ensure_ascii=False) + "\n",
        }
        if fmt not in writers:
            raise ConstitutionError(f"{path}: unknown format {fmt!r}; expected one of {sorted(writers)}")
        content = writers[fmt]()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(content, encoding="utf-8")
        tmp.replace(path)
        return path

    def to_json(self) -> str:
        payload = self.to_dict()
        payload["content_hash"] = self.content_hash
        return json.dumps(payload, indent=2, ensure_ascii=False) + "\n"

    def to_yaml(self) -> str:
        header = (
            f"# ccai constitution '{self.name}' v{self.version}: {len(self.principles)} principles.\n"
            "# Edit freely; `ccai constitution convert this.yaml out.json` validates and hashes it.\n"
        )
        return header + yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True, width=100)

    def to_markdown(self) -> str:
        lines = [f"# {self.name} (v{self.version})", ""]
        if self.description:
            lines += [self.description, ""]
        lines += [f"{len(self.principles)} principles · content hash `{self.content_hash[:16]}`", ""]
        lines += [f"Review: {self.review_line()}", ""]
        if labelling := self.metadata.get("group_labelling"):
            lines += [f"Agree rates per opinion group use: {labelling}", ""]
        for p in self.principles:
            lines += [f"## {p.id}", "", f"**{p.comparison}**", ""]
            lines += [f"- Critique: {p.critique_request}", f"- Revision: {p.revision_request}"]
            if p.tags:
                lines.append(f"- Tags: {', '.join(p.tags)}")
            if made := _provenance_line(p):
                lines.append(f"- Made by: {made}")
            for name in OPTIONAL_PRINCIPLE_FIELDS:
                if getattr(p, name) is not None:
                    lines.append(f"- {name.replace('_', ' ').capitalize()}: {getattr(p, name)}")
            for s in p.sources:
                lines.append(f"- Source: {_source_line(s)}")
            lines.append("")
        return "\n".join(lines)

    def _global_html(self) -> str:
        """For a merged (global) constitution: the country x principle support table and the conflicts with
        their evidence; empty for any other constitution."""
        countries = self.metadata.get("countries")
        if not isinstance(countries, list) or not countries:
            return ""
        e = html.escape
        base = self.metadata.get("base")
        head = "".join(f'<th scope="col">{e(str(c))}</th>' for c in countries)
        head += f'<th scope="col">base: {e(str(base))}</th>' if base else ""
        body = []
        for p in self.principles:
            support = p.metadata.get("support") or []
            cells = []
            for c in countries:
                refs = [
                    s.article if isinstance(s, ArticleSource) else getattr(s, "id", "")
                    for s in p.sources
                    if s.country == c
                ]
                mark = "✓" if c in support else ""
                title = f' title="{e("; ".join(str(r) for r in refs))}"' if refs else ""
                cells.append(f"<td{title}>{mark}</td>")
            if base:
                cells.append(f"<td>{'✓' if p.metadata.get('in_base') else ''}</td>")
            body.append(
                f'<tr><th scope="row"><a href="#{e(p.id)}">{e(predicate_preview(p.comparison))}</a></th>'
                f"{''.join(cells)}<td>{len(support)}</td></tr>"
            )
        table = (
            '<section id="support"><h2>Support by country</h2><p>✓: the country&#39;s text or consultation '
            'gave this principle (hover a mark for the articles); the count leaves out the base set.</p>'
            '<div style="overflow-x:auto">'
            f'<table class="support"><thead><tr><th scope="col">principle</th>{head}<th scope="col">countries'
            f"</th></tr></thead><tbody>{''.join(body)}</tbody></table></div></section>"
        )
        conflicts = self.metadata.get("conflicts") or []
        items = []
        for c in conflicts:
            if not isinstance(c, dict):
                continue
            sources = [
                "".join(f"<li>{e(str(x))}</li>" for x in c.get(side) or [])
                for side in ("sources_a", "sources_b")
            ]
            items.append(
                f"<li><p><b>{e(str(c.get('reason', '')))}</b> (topics: {e(', '.join(c.get('topics') or []))};"
                f" similarity without direction words {e(str(c.get('similarity', '')))})</p>"
                f'<p><a href="#{e(str(c.get("a", "")))}">{e(str(c.get("a", "")))}</a> '
                f"({e(', '.join(c.get('countries_a') or []))}): {e(str(c.get('text_a', '')))}</p>"
                f"<ul>{sources[0]}</ul>"
                f'<p><a href="#{e(str(c.get("b", "")))}">{e(str(c.get("b", "")))}</a> '
                f"({e(', '.join(c.get('countries_b') or []))}): {e(str(c.get('text_b', '')))}</p>"
                f"<ul>{sources[1]}</ul></li>"
            )
        listed = (
            f"<ol>{''.join(items)}</ol>"
            if items
            else "<p>None: no two principles from different inputs share a topic, ask in opposite "
            "directions about the same thing, and both cite sources.</p>"
        )
        return f'{table}<section id="conflicts"><h2>Conflicts ({len(items)})</h2>{listed}</section>'

    def to_html(self) -> str:
        """A self-contained page; every text is escaped (statements are participants' own words).

        A contents list links every principle; a tag filter (a plain ``<select>``, keyboard and screen-reader
        friendly; without JavaScript every principle simply stays shown) narrows the list.
        """
        e = html.escape
        rows, nav = [], []
        for number, p in enumerate(self.principles, 1):
            sources = "".join(f"<li>{e(_source_line(s))}</li>" for s in p.sources)
            tags = " ".join(f'<span class="tag">{e(t)}</span>' for t in p.tags)
            extra = "".join(
                f"<p><b>{e(name.replace('_', ' '))}</b>: {e(str(getattr(p, name)))}</p>"
                for name in OPTIONAL_PRINCIPLE_FIELDS
                if getattr(p, name) is not None
            )
            flag = (
                '<p class="flag">Needs a person&#39;s wording (the rules could not rewrite it faithfully)</p>'
                if p.id in self.needing_wording()
                else ""
            )
            rows.append(
                f'<section id="{e(p.id)}" data-tags="{e(" ".join(p.tags))}"><h2>{number}. '
                f'<a href="#{e(p.id)}">{e(p.id)}</a></h2>{flag}<p class="cmp">{e(p.comparison)}</p>'
                f"<p>Critique: {e(p.critique_request)}</p><p>Revision: {e(p.revision_request)}</p>{extra}"
                f"<p>{tags}</p><p><small>{e(_provenance_line(p))}</small></p>"
                f"<details><summary>{len(p.sources)} source(s)</summary><ul>{sources}</ul>"
                '</details><p><a href="#top">back to the contents</a></p></section>'
            )
            short = predicate_preview(p.comparison)
            nav.append(f'<li data-tags="{e(" ".join(p.tags))}"><a href="#{e(p.id)}">{e(short)}</a></li>')
        used = sorted({t for p in self.principles for t in p.tags})
        options = "".join(f'<option value="{e(t)}">{e(t)}</option>' for t in used)
        labelling = self.metadata.get("group_labelling")
        labelling_line = f"<p>Agree rates per opinion group use: {e(str(labelling))}</p>" if labelling else ""
        script = (
            "<script>const f=document.getElementById('tagfilter');f.addEventListener('change',()=>{"
            "let n=0;document.querySelectorAll('[data-tags]').forEach(el=>{const show=!f.value||"
            "el.dataset.tags.split(' ').includes(f.value);el.hidden=!show;"
            "if(show&&el.tagName==='SECTION')n++;});"
            "document.getElementById('shown').textContent=n+' shown';});</script>"
        )
        return (
            '<!doctype html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{e(self.name)}</title><style>body{{font-family:sans-serif;max-width:60rem;margin:auto;"
            "padding:0 1rem;line-height:1.4}.cmp{font-weight:bold}.tag{background:#eef;border-radius:3px;"
            "padding:0 4px;margin-right:4px;display:inline-block}.flag{color:#8a1c00;font-weight:bold}"
            "nav ol{columns:2 24rem;font-size:.9rem}section{border-top:1px solid #ccd;margin-top:1rem}"
            "a:focus,select:focus{outline:3px solid #1a5fb4}li{overflow-wrap:anywhere}"
            ".support{border-collapse:collapse;font-size:.85rem}"
            ".support td,.support th{border:1px solid #ccd;padding:2px 6px}.support td{text-align:center}"
            ".support th[scope=row]{text-align:left;"
            "font-weight:normal;min-width:14rem}"
            "</style></head><body>"
            f'<h1 id="top">{e(self.name)} <small>v{e(self.version)}</small></h1><p>{e(self.description)}</p>'
            f"<p>{len(self.principles)} principles · content hash <code>{self.content_hash[:16]}</code></p>"
            f'<p class="{"" if self.is_reviewed else "flag"}">Review: {e(self.review_line())}</p>'
            f"{labelling_line}"
            '<p><label for="tagfilter">Show principles tagged </label><select id="tagfilter">'
            f'<option value="">(all tags)</option>{options}</select> <span id="shown" aria-live="polite">'
            f"{len(self.principles)} shown</span></p>"
            f'<nav aria-label="Principles"><h2>Contents</h2><ol>{"".join(nav)}</ol></nav>'
            + self._global_html()
            + "".join(rows)
            + script
            + "</body></html>\n"
        )


def predicate_preview(comparison: str, limit: int = 90) -> str:
    """A principle's text without 'Choose the response that', cut to ``limit`` characters (contents list)."""
    text = re.sub(r"^Choose the (?:assistant )?response that\s+", "", comparison.strip())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


# ---- formats --------------------------------------------------------------------------------------------
FORMATS = {".json": "json", ".yaml": "yaml", ".yml": "yaml", ".md": "md", ".html": "html", ".htm": "html"}


def format_for(path: Path) -> str:
    """The format a file name asks for: ``x.recipe.json`` -> recipe, else by suffix."""
    name = path.name.lower()
    if name.endswith(".recipe.json"):
        return "recipe"
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ConstitutionError(
            f"{path}: unknown file type {path.suffix!r}; use .json, .yaml, .md, .html or .recipe.json"
        )
    return fmt


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the exchange format (what :data:`SCHEMA_PATH` ships)."""
    schema = Constitution.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["properties"]["content_hash"] = {
        "type": "string",
        "pattern": "^[0-9a-f]{64}$",
        "description": "sha256 of the canonical JSON of every other field",
    }
    return schema


def _read_text(path: Path) -> str:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: constitution file not found") from None
    if not path.is_file():
        raise ConstitutionError(f"{path}: not a regular file")
    if size > MAX_FILE_BYTES:
        raise ConstitutionError(
            f"{path}: file is {size:,} bytes, over the {MAX_FILE_BYTES:,}-byte limit for a constitution "
            "file (a constitution is a few hundred kB at most)"
        )
    try:
        return path.read_text(encoding="utf-8-sig")  # a UTF-8 byte-order mark (Windows editors) is accepted
    except UnicodeDecodeError as exc:
        raise ConstitutionError(f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None


def _parse_json(text: str, source: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise ConstitutionError(f"{source}: {where}: not valid JSON: {exc.msg}") from None
    except RecursionError:
        raise ConstitutionError(f"{source}: JSON nested too deeply") from None


class _NoAliasLoader(yaml.SafeLoader):
    """Safe YAML without anchors/aliases (alias expansion is how 'billion laughs' files blow up memory)."""

    def compose_node(self, parent, index):  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.constructor.ConstructorError(
                None, None, "YAML aliases (*name) are not allowed in a constitution file", event.start_mark
            )
        return super().compose_node(parent, index)


def _parse_yaml(text: str, source: str) -> Any:
    try:
        return yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}:" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        if "could not determine a constructor" in str(exc):
            problem = f"{problem} (only plain YAML is accepted: no !!python or other tags)"
        raise ConstitutionError(f"{source}:{where} not valid YAML: {problem}") from None
    except RecursionError:
        raise ConstitutionError(f"{source}: YAML nested too deeply") from None


def _line_of(text: str, loc: tuple[Any, ...]) -> int | None:
    """Best-effort line of a field path in YAML/JSON text (JSON is read as YAML flow style)."""
    try:
        node = yaml.compose(text, Loader=_NoAliasLoader)
    except Exception:  # noqa: BLE001 - only a hint; the error is reported without a line
        return None
    line = None
    for part in loc:
        if node is None:
            break
        line = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            node = None
    if node is not None:
        line = node.start_mark.line + 1
    return line


def _describe(exc: ValidationError, source: str, text: str | None) -> str:
    problems = []
    for error in exc.errors()[:10]:
        # discriminated unions add the tag ('statement') to the path; it is not a key of the file
        loc = tuple(p for p in error["loc"] if p not in ("statement", "article", "base", "function-after"))
        path = ".".join(str(p) for p in loc) or "(top level)"
        line = _line_of(text, loc) if text else None
        where = f"line {line}, " if line else ""
        problems.append(f"{where}field {path}: {error['msg']}")
    more = f" (and {exc.error_count() - 10} more)" if exc.error_count() > 10 else ""
    return f"{source}: not a valid constitution: " + "; ".join(problems) + more


def _provenance_line(p: Principle) -> str:
    """How a principle was made (rewrite rule, merge), from its metadata; '' when not recorded."""
    parts = []
    rewrite = p.metadata.get("rewrite")
    if isinstance(rewrite, dict) and rewrite.get("worded_by"):
        parts.append(f"worded by {rewrite['worded_by']} (rules gave '{rewrite.get('rule')}')")
    elif isinstance(rewrite, dict) and rewrite.get("rule"):
        parts.append(f"rewrite rule '{rewrite['rule']}' by {rewrite.get('by', 'rules')}")
    if isinstance(rewrite, dict) and rewrite.get("typos"):
        parts.append("suspected typos kept as written: " + ", ".join(map(str, rewrite["typos"])))
    merge = p.metadata.get("merge")
    if isinstance(merge, dict) and merge.get("members"):
        reviewed = "reviewed" if merge.get("reviewed") else "not yet reviewed"
        parts.append(f"merge {merge.get('id')} of {len(merge['members'])} statements ({reviewed})")
    support = p.metadata.get("support")
    if isinstance(support, list) and support:
        parts.append(f"supported by {', '.join(map(str, support))}")
    return "; ".join(parts)


def _source_line(s: StatementSource | ArticleSource | BaseSource) -> str:
    where = f" [{s.country}]" if s.country else ""
    if isinstance(s, StatementSource):
        votes = ""
        if s.agree is not None:
            votes = f" (agree {s.agree}, disagree {s.disagree}, pass {s.pass_}"
            votes += f", GAC {s.gac:.3f}" if s.gac is not None else ""
            if s.group_agree:
                votes += "; agree by group: " + ", ".join(f"{g} {r:.0%}" for g, r in s.group_agree.items())
            votes += ")"
        return f"statement {s.id}{where}: {s.text!r}{votes}"
    if isinstance(s, ArticleSource):
        return f"{s.document}, {s.article}{where}: {s.text[:300]!r}"
    return f"{s.constitution} principle {s.principle_id}{where}: {s.text!r}"


# ---- the open CAI recipe list format -----------------------------------------------------------------------
def _looks_like_recipe(data: Any) -> bool:
    return (isinstance(data, dict) and "constitutions" in data and "principles" not in data) or (
        isinstance(data, list) and bool(data) and isinstance(data[0], dict) and "critic" in data[0]
    )


def to_recipe(constitution: Constitution) -> dict[str, Any]:
    """``{"constitutions": [{"critic", "revision"}]}``: what the open CAI recipes read (drops sources)."""
    return {
        "constitutions": [
            {"critic": p.critique_request, "revision": p.revision_request} for p in constitution.principles
        ]
    }


def from_recipe(data: Any, source: str = "<recipe>", name: str | None = None) -> Constitution:
    """Read the recipe list format; the comparison form is derived from the critique request."""
    items = data.get("constitutions") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise ConstitutionError(f"{source}: field constitutions: expected a list of {{critic, revision}}")
    principles = []
    for i, item in enumerate(items):
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("critic"), str)
            or not isinstance(item.get("revision"), str)
        ):
            raise ConstitutionError(
                f"{source}: field constitutions.{i}: expected an object with string 'critic' and 'revision'"
            )
        critic, revision = item["critic"].strip(), item["revision"].strip()
        principles.append(
            {
                "id": f"p{i + 1:03d}",
                "comparison": f"Choose the response that gives the least to criticise under: {critic}",
                "critique_request": critic,
                "revision_request": revision,
                "sources": [{"kind": "base", "constitution": source, "principle_id": str(i), "text": critic}],
            }
        )
    return Constitution.from_dict({"name": name or Path(source).stem, "principles": principles}, source)


# ---- the CAI paper's own files -----------------------------------------------------------------------------
_CRIT_PREFIX = re.compile(r"^\s*CritiqueRequest:\s*")
_CRIT_SUFFIX = re.compile(r"\s*Critique:\s*$")
_REV_PREFIX = re.compile(r"^\s*RevisionRequest:\s*")
_REV_SUFFIX = re.compile(r"\s*Revision:\s*$")
_OPTIONS_SUFFIX = re.compile(r"\s*Options:\s*$")
_CAI_PAPER = "CAI paper (Bai et al. 2022)"


def from_cai_paper(folder: Path | str) -> Constitution:
    """The Constitutional AI paper's published principle files (Bai et al. 2022) as a constitution.

    The paper's 16 critique/revision pairs (SL-CAI) and 16 comparison principles (RL-CAI) are two separate
    lists; here the i-th of each form principle ``cai-paper-i`` (a pairing convention, recorded in metadata).
    The few-shot dialogues travel in ``metadata['few_shot']`` so the paper's prompts can be rebuilt.
    """
    folder = Path(folder)
    needed = ("CritiqueRevisionInstructions.json", "RLMadisonInstructions.json")
    if not all((folder / name).is_file() for name in needed):
        raise ConstitutionError(
            f"{folder}: not the CAI paper's prompt folder (expected {' and '.join(needed)})"
        )

    def read(name: str) -> Any:
        path = folder / name
        return _parse_json(_read_text(path), str(path))

    pairs = read("CritiqueRevisionInstructions.json")
    comparisons = read("RLMadisonInstructions.json")
    if not isinstance(pairs, dict) or not isinstance(comparisons, list):
        raise ConstitutionError(f"{folder}: expected a dict of critique/revision pairs and a principle list")
    keys = sorted(pairs, key=lambda k: int(re.sub(r"\D", "", k) or 0))
    if len(keys) != len(comparisons):
        raise ConstitutionError(
            f"{folder}: {len(keys)} critique/revision pairs but {len(comparisons)} comparison principles"
        )
    principles = []
    for i, (key, comparison) in enumerate(zip(keys, comparisons, strict=True)):
        entry = pairs[key]
        try:
            critique = _CRIT_SUFFIX.sub("", _CRIT_PREFIX.sub("", entry["prompt"][0]))
            revision = _REV_SUFFIX.sub("", _REV_PREFIX.sub("", entry["edit_request"]))
        except (KeyError, IndexError, TypeError):
            raise ConstitutionError(
                f"{folder / 'CritiqueRevisionInstructions.json'}: field {key}: expected "
                "{'prompt': [text], 'edit_request': text}"
            ) from None
        principles.append(
            Principle(
                id=f"cai-paper-{i:02d}",
                comparison=_OPTIONS_SUFFIX.sub("", comparison).strip(),
                critique_request=critique.strip(),
                revision_request=revision.strip(),
                tags=["avoids-undesired", "harm-avoidance"],
                sources=[
                    BaseSource(constitution=_CAI_PAPER, principle_id=key, text=critique.strip()),
                    BaseSource(
                        constitution=_CAI_PAPER,
                        principle_id=f"RLMadisonInstructions[{i}]",
                        text=comparison.strip(),
                    ),
                ],
            )
        )
    few_shot = {
        "critique_revision": read("CritiqueRevisionFewShotPrompts.json"),
        "feedback": read("RLMadisonFewShotPrompts.json"),
        "feedback_chain_of_thought": read("RLMadisonPrecogFewShotPrompts.json"),
    }
    return Constitution(
        name="cai-paper",
        version="2022.12",
        description=(
            "The principles of 'Constitutional AI: Harmlessness from AI Feedback' (Bai et al. 2022, "
            "arXiv 2212.08073), imported from the paper's published prompt files."
        ),
        principles=principles,
        metadata={
            "source": "anthropics/ConstitutionalHarmlessnessPaper prompts/ (831f7813dbaf)",
            "pairing": "i-th critique/revision pair + i-th comparison principle (two lists in the paper)",
            "few_shot": few_shot,
        },
    )
