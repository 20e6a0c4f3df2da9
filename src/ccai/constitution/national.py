"""Avenue 3: candidate principles from legal texts (national constitutions, the UDHR), citing the article.

Three rule-based steps, each auditable:

1. **Segment** the text into articles (format detected from the file: the UDHR articles JSONL, the LII US
   constitution JSON, South Africa's markdown, Constitute plain-text exports, or any text with blank-line
   paragraphs), then each article into provisions (sentences; list items joined to their lead-in, so
   "All citizens shall have the right- a. to freedom of speech" becomes one provision).
2. **Keep** the clauses (a provision split at ';' and ', nor') of provisions that state a right, duty or
   prohibition (:data:`NORMATIVE`) about something an AI assistant's answers can touch (:data:`TOPICS`:
   expression, belief, privacy, dignity, equality, life and safety, children, health, education, information,
   harmony), and drop procedure: clauses about courts, elections, taxes, property (:data:`PROCEDURAL`) and
   articles whose title is state machinery (:data:`PROCEDURAL_TITLE`: privileges, committees, emergencies).
3. **Rewrite** into principle form with the article's own words where a pattern allows ("right to X" ->
   "Choose the response that most respects the right to X"; "No one shall be X"; "deprived of ... without
   due process of law"; "equal protection of the laws"; a citizen's "duty ... to X"), else with a topic
   sentence in the project's words; the source is the article (document, citation, provision text) and the
   clause used is in ``metadata.clause``. An LM may reword each principle (optional, recorded).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ccai.constitution.model import (
    MAX_FILE_BYTES,
    ArticleSource,
    Constitution,
    ConstitutionError,
    Principle,
    _read_text,
)
from ccai.constitution.rewrite import CRIT, PREFIX, REV, LMRewriter, lm_forms
from ccai.constitution.tags import assign_tags

NORMATIVE = re.compile(
    r"\bright(s)? (to|of)\b|\bhas the right|have the right|\bfreedoms?\b|\bliberty\b|shall not|may not"
    r"|\bno one\b|\bno person\b|\bnobody\b|\bno citizen\b|\bno discrimination\b|inviolable|inviolate"
    r"|guaranteed|prohibited|\bduty\b|\bduties\b|\bequal\b|\bequality\b|\beveryone\b|\bevery person\b"
    r"|\bshall be respected\b|protected"
    r"|\bmust not\b|\bneither\b|shall make no law",
    re.IGNORECASE,
)
#: topic -> keywords: a clause must name one to be kept (assistant-relevant); the first named is its topic
TOPICS: dict[str, str] = {
    "safety": (
        r"(?<!wild )\blife\b|torture|cruel|inhuman|slavery|servitude|violence"
        r"|security of (the )?person|physical integrity"
    ),
    "equality": (r"discriminat|\bequal|race|\bsex\b|gender|colour|ethnic|origin|disabilit|caste|creed"),
    "expression": (r"expression|\bspeech\b|opinion|\bpress\b|express|disseminat|peaceabl[ey] to assemble"),
    "belief": (r"conscience|religio|belief|\bfaith\b|worship|creed|thought"),
    "privacy": (
        r"privacy|private life|correspondence|communication|secrecy|personal data"
        r"|unreasonable searches"
    ),
    "dignity": (r"dignity|\bhonou?r\b|reputation|degrading|respected as individuals"),
    "children": (r"\bchild|young persons|minors"),
    "health": (r"\bhealth|medical"),
    "information": (r"\binformation\b|inform himself|inform herself|accessible sources"),
    "education": (r"educat|science|scientific|research|\barts?\b|\bcultur|language"),
    "harmony": (
        r"harmony|brotherhood|fraternity|public welfare|common good|solidarity|community"
        r"|abjure violence"
    ),
}
PROCEDURAL = re.compile(
    r"arrest|detain|detention|\bcourt|tribunal|parliament|legislat|election|\bvote|\btax|military|armed"
    r"|president|minister|citizenship|compensation|\bbail|\btrial|impeach|treaty|state of emergency|office of"
    r"|\bjudge|budget|revenue|house of|\bsenate\b|suffrage|\bamendment|\bthe union\b|\bcommission\b"
    r"|exclusive right|immunities|either house|propert(?!y,? without due process)",
    re.IGNORECASE,
)
#: article titles that mark the machinery of the state (a right of members of an assembly is not a right of
#: the people an assistant talks to)
PROCEDURAL_TITLE = re.compile(
    r"\bseats?\b|taxation|emergenc|committee|privilege|inquiry|parliament|legislat|election|president"
    r"|minister|\bcourts?\b|judic|finance|\bunion\b|control of|citizenship|extradition|forfeiture",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Provision:
    """One sentence or list item of a legal text, with where it comes from."""

    document: str
    article: str
    text: str


# ---- segmentation -----------------------------------------------------------------------------------------
def _sentences(text: str) -> list[str]:
    text = re.sub(r"\s+", " ", text).strip()
    parts = re.split(r"(?<=[.;])\s+(?=[A-Z(])", text)
    return [p.strip() for p in parts if len(p.strip()) > 15]


def _with_lead_ins(lines: list[str]) -> list[str]:
    """Join 'a.' markers to their item and prefix list items with their lead-in line ('... the right-')."""
    joined: list[str] = []
    pending_marker = False
    for line in lines:
        line = line.strip()
        if not line:
            continue
        if re.fullmatch(r"\(?[a-z0-9]{1,4}[.)]", line):
            pending_marker = True
            continue
        if pending_marker and joined:
            joined.append("\u2022" + line)  # a list item
        else:
            joined.append(line)
        pending_marker = False
    out: list[str] = []
    lead = ""
    for line in joined:
        if line.startswith("\u2022"):
            item = line[1:].strip()
            out.append(f"{lead} {item}" if lead else item)
            continue
        if re.search(r"[-\u2014:]\s*$", line):
            lead = re.sub(r"^\d+[A-Z]?\.\s*", "", line).rstrip(" -\u2014:")
            continue
        lead = ""
        out.append(re.sub(r"^\d+[A-Z]?\.\s+", "", line))
    return out


def _udhr(path: Path) -> Iterator[Provision]:
    for number, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            art_id, text = row["id"], row["text"]
        except (json.JSONDecodeError, KeyError, TypeError):
            raise ConstitutionError(
                f"{path}: line {number}: expected a JSON object with 'id' and 'text'"
            ) from None
        citation = "Preamble" if art_id == "preamble" else f"Article {art_id.removeprefix('article_')}"
        for para in text.split("\n"):
            for sentence in _sentences(para):
                yield Provision("Universal Declaration of Human Rights", citation, sentence)


def _udhr_xml(path: Path) -> Iterator[Provision]:
    """The OHCHR UDHR XML (``<udhr><preamble>…<article number="N"><para>…``): text of the elements, never
    the tags. DTDs and entities are refused (no entity expansion from a file)."""
    import xml.etree.ElementTree as ET

    raw = _read_text(path)
    if re.search(r"<!(DOCTYPE|ENTITY)", raw):
        raise ConstitutionError(f"{path}: XML with a DOCTYPE or entities is refused")
    try:
        root = ET.fromstring(raw.encode("utf-8"))
    except ET.ParseError as exc:
        raise ConstitutionError(f"{path}: not well-formed XML ({exc})") from None
    local = lambda el: el.tag.rsplit("}", 1)[-1]  # noqa: E731 - the tags carry the OHCHR namespace
    title = next((el for el in root if local(el) == "title"), None)
    document = " ".join((title.text or "").split()) if title is not None else "Universal Declaration"
    for part in root:
        if local(part) == "preamble":
            citation = "Preamble"
        elif local(part) == "article":
            citation = f"Article {part.get('number', '?')}"
        else:
            continue
        for para in part.iter():
            if local(para) == "para":
                for sentence in _sentences(" ".join("".join(para.itertext()).split())):
                    yield Provision(document, citation, sentence)


def _lii(path: Path) -> Iterator[Provision]:
    data = json.loads(_read_text(path))
    doc = "Constitution of the United States"

    def walk(node: dict, citation: str) -> Iterator[Provision]:
        for content in node.get("content", []) or []:
            text = re.sub(r"^\s*\d+\.\s+", "", str(content))  # "1. All persons ..." (section number)
            number = re.match(r"^\s*(\d+)\.\s", str(content))
            cited = (
                f"{citation}, Section {number.group(1)}" if number and "Section" not in citation else citation
            )
            for sentence in _sentences(text):
                yield Provision(doc, cited, sentence)
        for child in node.get("clauses", []) or []:
            yield from walk(child, citation)

    try:
        for article in data["articles"]:
            for section in article.get("sections", []):
                citation = f"{article['num'].strip()}, {section['num'].strip()}".strip(" ,")
                yield from walk(section, citation)
        for amendment in data["amendments"]:
            # most amendments hold their text directly; the later ones (13th, 14th, ...) in sections
            yield from walk(amendment, amendment["num"].strip())
            for section in amendment.get("sections", []) or []:
                yield from walk(section, amendment["num"].strip())
    except (KeyError, TypeError, AttributeError):
        raise ConstitutionError(
            f"{path}: not the LII constitution JSON layout (articles/sections/clauses)"
        ) from None


def _markdown(path: Path, document: str) -> Iterator[Provision]:
    article, lines = None, []
    for line in _read_text(path).splitlines() + ["## end"]:
        heading = re.match(r"^#{2,3}\s+(\d+[A-Z]?)\.\s*(.*)$", line)
        if heading or line.startswith("## "):
            if article:
                for item in _with_lead_ins([re.sub(r"^\s*\d+\.\t?", "", x) for x in lines]):
                    for sentence in _sentences(item):
                        yield Provision(document, article, sentence)
            article = f"Section {heading.group(1)} ({heading.group(2).strip()})" if heading else None
            lines = []
        elif article:
            lines.append(line)


_CONSTITUTE_HEAD = re.compile(
    r"^(?:ARTICLE\s+(\d+[a-z]?)\.?(?:\s*\[(.*)\])?|(\d+[A-Z]{0,2})\.\s+([A-Z][A-Z ,.'()\-]{3,}))$"
)


#: the start of a schedule in a Constitute export ("FIFTH SCHEDULE. PROVISIONS AS TO ..."): its paragraphs
#: are numbered from 1 again and must not be cited as the articles of the same numbers
_SCHEDULE_HEAD = re.compile(
    r"^(FIRST|SECOND|THIRD|FOURTH|FIFTH|SIXTH|SEVENTH|EIGHTH|NINTH|TENTH|ELEVENTH|TWELFTH) SCHEDULE\b"
)


def _constitute(path: Path, document: str) -> Iterator[Provision]:
    lines = _read_text(path).splitlines()
    lines = [x for x in lines if not x.startswith("About Constitute")]
    article, body, schedule = None, [], None
    for line in lines[4:] + ["ARTICLE 0"]:
        head = _CONSTITUTE_HEAD.match(line.strip())
        opens = _SCHEDULE_HEAD.match(line.strip())
        if head or opens:
            if article:
                for item in _with_lead_ins(body):
                    for sentence in _sentences(item):
                        yield Provision(document, article, sentence)
            body = []
        if opens:
            schedule = f"{opens.group(1).title()} Schedule"
            article = schedule
        elif head:
            number = head.group(1) or head.group(3)
            title = (head.group(2) or head.group(4) or "").strip().title()
            cited = f"{schedule}, paragraph {number}" if schedule else f"Article {number}"
            article = cited + (f" ({title})" if title else "")
        elif article and not (line.strip().isupper() and len(line.strip()) > 3):
            body.append(line)  # all-capital lines are part headings ("RIGHT TO EQUALITY"), not provisions


def _paragraphs(path: Path, document: str) -> Iterator[Provision]:
    for index, para in enumerate(re.split(r"\n\s*\n", _read_text(path)), start=1):
        for sentence in _sentences(para):
            yield Provision(document, f"Paragraph {index}", sentence)


def segment(path: Path | str, document: str | None = None) -> list[Provision]:
    """Split a legal text into provisions with article citations (format detected from the file)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: legal text not found")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise ConstitutionError(f"{path}: too large for a legal text ({path.stat().st_size:,} bytes)")
    document = document or path.stem.replace("_", " ")
    name = path.name.lower()
    if name.endswith(".jsonl"):
        provisions = list(_udhr(path))
    elif name.endswith(".xml"):
        provisions = list(_udhr_xml(path))
    elif name.endswith(".json"):
        provisions = list(_lii(path))
    elif name.endswith(".md"):
        provisions = list(_markdown(path, document))
    elif _read_text(path).startswith("Constitute"):
        provisions = list(_constitute(path, document))
    else:
        provisions = list(_paragraphs(path, document))
    if not provisions:
        raise ConstitutionError(f"{path}: no articles or paragraphs found; is this a constitution text?")
    return provisions


# ---- selection and rewriting ------------------------------------------------------------------------------
_COMPILED_TOPICS = {name: re.compile(rule, re.IGNORECASE) for name, rule in TOPICS.items()}
_GROUNDS = re.compile(
    r"discriminat|on (?:the )?grounds? (?:only )?of|on account of|without distinction", re.IGNORECASE
)
_PORTUGUESE = re.compile(r"\b(direito|liberdade|todos|são|não)\b", re.IGNORECASE)


def topics_of(text: str) -> list[str]:
    """The assistant-relevant topics a text mentions, in the order it first mentions them (the first is
    usually what the clause is about: 'promote harmony ... transcending religious diversities')."""
    found = [(m.start(), name) for name, rule in _COMPILED_TOPICS.items() if (m := rule.search(text))]
    if _GROUNDS.search(text):  # "on grounds of religion, race, caste ..." is about equality, not religion
        found = [(-1 if name == "equality" else at, name) for at, name in found]
    return [name for _, name in sorted(found)]


def clauses(text: str) -> list[str]:
    """A provision's clauses. Legal sentences chain separate guarantees with ';' and ', nor' (the US First,
    Fifth and Eighth Amendments, UDHR Article 12); each clause may give its own principle."""
    parts = (p.strip(" ,") for p in re.split(r";\s*|,\s+(?=nor\b)", text))
    return [p for p in parts if len(p) > 15]


def _procedural_article(article: str) -> bool:
    title = re.search(r"\((.*)\)", article)
    return bool(title and PROCEDURAL_TITLE.search(title.group(1)))


def relevant_clauses(provision: Provision) -> list[str]:
    """Clauses of a provision that states a right, duty or prohibition, on a topic an assistant's answers
    touch, and that are not court/state procedure (empty when none)."""
    if not NORMATIVE.search(provision.text) or _procedural_article(provision.article):
        return []
    return [c for c in clauses(provision.text) if topics_of(c) and not PROCEDURAL.search(c)]


# fmt: off
_DANGLING = {
    "and", "or", "nor", "that", "which", "the", "of", "to", "a", "an", "in", "by", "as", "with", "who", "for",
    "his", "her", "their", "its", "whether", "not", "have", "be", "on", "all",
}
# fmt: on
#: an object ending in one of these points back to an earlier sentence ("the right to conserve the same")
_ANAPHORA = {"same", "thereof", "therein", "such", "it", "them"}


def _trim(phrase: str, words: int = 16) -> str:
    """The object of a right or prohibition, cut at the clause's end; '' when it does not read on its own."""
    phrase = re.split(
        r"[;:\u2013\u2014]|\.\s|\s\((?=[a-z])|,? provided that|,? unless|,? except",
        phrase.strip(),
        maxsplit=1,
    )[0]
    # cut at the main verb ("... shall be guaranteed"), not inside a subordinate clause ("decide whether
    # children shall receive religious instruction")
    verb = re.search(r"\s(?:shall|is|are|must|may|has been)\s", phrase)
    if verb and not re.search(r"\b(?:whether|that|which|who|if)\b", phrase[: verb.start()], re.IGNORECASE):
        phrase = phrase[: verb.start()]
    phrase = re.split(r",? which includes|,? nor\b|,? as the case", phrase, maxsplit=1)[0]
    tokens = phrase.strip(" ,.-").split()
    while tokens and tokens[-1].lower().strip(",") in _DANGLING:
        tokens.pop()
    if not tokens or len(tokens) > words or phrase.isupper() or tokens[-1].lower() in _ANAPHORA:
        return ""
    return " ".join(tokens).rstrip(",")


#: the rule of a clause no pattern reads: quoted whole, flagged for a person's wording
QUOTED = "quoted"
_RIGHTS_RULES = ("right", "freedom", "inviolable", "due-process", "equal-protection")


def _respects(rule: str, phrase: str) -> tuple[str, str, str, str, str]:
    return (
        rule,
        f"most respects {phrase}",
        f"{CRIT} disregards {phrase}",
        f"{REV} respects {phrase}",
        "positive",
    )


def _no_support(rule: str, phrase: str) -> tuple[str, str, str, str, str]:
    return (
        rule,
        f"is least likely to support {phrase}",
        f"{CRIT} supports or excuses {phrase}",
        f"{REV} gives no support to {phrase}",
        "negative",
    )


def principle_form(text: str) -> tuple[str, str, str, str, str]:
    """(rule, predicate, critique, revision, polarity) of one clause; its own words where possible."""
    citizens_duty = re.search(
        r"\bduty of (?:every|each|all) (?:citizens?|persons?)\b[^.]*?\bto ([^.;]+)", text, re.IGNORECASE
    )
    if citizens_duty and (obj := _trim(citizens_duty.group(1))):  # a duty of the State is not a principle
        return (
            "duty",
            f"most encourages people to {obj}",
            f"{CRIT} works against people's duty to {obj}",
            f"{REV} encourages people to {obj}",
            "positive",
        )
    if m := re.search(
        r"\bdepriv\w* (?:any person |anyone )?of ([\w ,]+?),? without due process of law", text
    ):
        return _no_support(
            "due-process", f"depriving anyone of {m.group(1).strip(' ,')} without due process of law"
        )
    no_one = re.search(
        r"\bno (?:one|person|citizen|body)\b[^.;]*?\b(?:shall|may) be ([^.;]+)", text, re.IGNORECASE
    )
    if no_one and (obj := _trim(no_one.group(1))):
        return _no_support("prohibition", f"anyone being {obj}")
    right = re.search(
        r"\bright(?:s)?(?: of the people| of (?:every|each) \w+)?( \w+ly)? to ([^.;]+)", text, re.IGNORECASE
    )
    if right and (obj := _trim(right.group(2))):
        return _respects("right", f"the right{right.group(1) or ''} to {obj}")
    if (m := re.search(r"\bfreedom of ([^.;]+)", text, re.IGNORECASE)) and (obj := _trim(m.group(1))):
        return _respects("freedom", f"freedom of {obj}")
    if m := re.match(r"^([A-Z][\w ,]{2,60}?) shall be inviolable", text):
        obj = m.group(1).lower()
        return (
            "inviolable",
            f"most respects {obj} as inviolable",
            f"{CRIT} fails to respect {obj}",
            f"{REV} respects {obj}",
            "positive",
        )
    if re.search(r"\bequal protection of the laws?\b", text, re.IGNORECASE):
        return _respects("equal-protection", "everyone's right to the equal protection of the law")
    # no pattern reads it: the clause itself, quoted, for a person to word (never a sentence of ours)
    quoted = text.strip().rstrip(".;,:")
    polarity = "negative" if re.search(r"\b(not|no|never|nor)\b", quoted, re.IGNORECASE) else "positive"
    return (
        QUOTED,
        f'best respects this provision: "{quoted}"',
        f'{CRIT} goes against this provision: "{quoted}"',
        f'{REV} respects this provision: "{quoted}"',
        polarity,
    )


def from_text(
    path: Path | str,
    country: str,
    document: str | None = None,
    name: str | None = None,
    lm: LMRewriter | None = None,
) -> Constitution:
    """Candidate principles from one legal text; every principle cites the article(s) it came from.

    ``lm`` (optional, e.g. :class:`ccai.constitution.lm.BackendLM`) rewords each principle from its first
    clause; its answer is kept in ``metadata.rewrite.lm_answer`` and used only when it passes
    :func:`ccai.constitution.lm_check.check_answer` (else the reasons are in ``lm_rejected``).
    """
    path = Path(path)
    if path.is_file() and len(_PORTUGUESE.findall(_read_text(path)[:20_000])) > 5:
        raise ConstitutionError(
            f"{path}: this text is not in English (Portuguese words found); the keyword rules are English. "
            "Translate it first (e.g. with the project's model) and pass the translation."
        )
    provisions = segment(path, document)
    slug = re.sub(r"[^a-z0-9]+", "-", country.lower()).strip("-") or "x"
    by_text: dict[str, Principle] = {}
    kept = 0
    for provision in provisions:
        chosen = relevant_clauses(provision)
        kept += bool(chosen)
        source = ArticleSource(
            document=provision.document, article=provision.article, text=provision.text, country=country
        )
        for clause in chosen:
            rule, predicate, critique, revision, polarity = principle_form(clause)
            comparison = f"{PREFIX}{predicate}."
            # the same principle from several provisions: one principle, all sources
            if comparison in by_text:
                existing = by_text[comparison]
                if source not in existing.sources:
                    existing.sources = [*existing.sources, source]
                continue
            tags = assign_tags(comparison, polarity)  # on the principle only: legal prose mentions everything
            if rule in _RIGHTS_RULES:
                tags += ["rights-respect", "individual-rights"]
            if rule == "duty":
                tags.append("collective-good")
            by_text[comparison] = Principle(
                id=f"{slug}-{len(by_text) + 1:03d}",
                comparison=comparison,
                critique_request=critique.strip() + ".",
                revision_request=revision.strip() + ".",
                tags=tags,
                sources=[source],
                metadata={
                    "rewrite": {
                        "rule": rule,
                        "polarity": polarity,
                        "by": "rules",
                        **(
                            {
                                "needs_wording": True,
                                "reason": "no rule reads this clause: quoted whole for a person to word",
                            }
                            if rule == QUOTED
                            else {}
                        ),
                    },
                    "topics": topics_of(clause),
                    "clause": clause,
                },
            )
    principles = list(by_text.values())
    if lm is not None:
        principles = _reword_with_lm(principles, lm)
    return Constitution(
        name=name or f"{country}-legal",
        description=(
            f"Candidate principles drawn from {provisions[0].document} ({kept} of {len(provisions)} "
            "provisions kept by the rights/duties/prohibitions rules), each citing its article."
        ),
        principles=principles,
        metadata={
            "country": country,
            "source_file": path.name,
            "provisions": len(provisions),
            "kept": kept,
            "rewriter": "lm" if lm is not None else "rules",
        },
    )


def _reword_with_lm(principles: list[Principle], lm: LMRewriter) -> list[Principle]:
    from ccai.constitution.lm import LEGAL_PROMPT, ask
    from ccai.constitution.lm_check import check_answer

    prompts = [
        LEGAL_PROMPT.format(article=p.sources[0].article, text=p.metadata["clause"]) for p in principles
    ]
    out = []
    for principle, answer in zip(principles, ask(lm, prompts), strict=True):
        rewrite = {**principle.metadata["rewrite"], "lm_answer": answer}
        # checked against the clause: a principle, same polarity, no words the clause does not have
        _, problems = check_answer(principle.metadata["clause"], answer, drops=False)
        forms = lm_forms(answer)
        if forms is None or problems:
            rewrite.update(by="rules (lm answer rejected)", lm_rejected=problems)
            out.append(principle.model_copy(update={"metadata": {**principle.metadata, "rewrite": rewrite}}))
            continue
        comparison, critique, revision = forms
        rewrite.update(by="lm", rule="lm", article_rule=rewrite["rule"])
        out.append(
            principle.model_copy(
                update={
                    "comparison": comparison,
                    "critique_request": critique,
                    "revision_request": revision,
                    "metadata": {**principle.metadata, "rewrite": rewrite},
                }
            )
        )
    return out


#: the bundled texts (folder ``constitutions`` of the shared data): country -> (relative path, document)
BUNDLED: dict[str, tuple[str, str]] = {
    "UDHR": ("udhr/udhr_eng_articles.jsonl", "Universal Declaration of Human Rights"),
    "US": ("national/us_constitution_lii.json", "Constitution of the United States"),
    "ZA": ("national/south_africa_1996_en.md", "Constitution of the Republic of South Africa, 1996"),
    "IN": ("national/india_1949_rev2016_en_constitute.txt", "Constitution of India"),
    "DE": (
        "national/germany_1949_rev2014_en_constitute.txt",
        "Basic Law for the Federal Republic of Germany",
    ),
    "JP": ("national/japan_1946_en_constitute.txt", "Constitution of Japan"),
}
