"""Statement -> principle, with the smallest change that keeps the public's intent.

Deterministic rules, tried in order (the rule used is recorded on the principle, so the change is auditable):

=================  =======================================  =================================================
rule               statement                                comparison form
=================  =======================================  =================================================
``be-adjective``   The AI should be respectful              Choose the response that is most respectful
``not-be``         The AI should not be toxic               Choose the response that is least toxic
``be-as``          The AI should be as helpful as possible  Choose the response that is as helpful as possible
``be-noun``        The AI should be an educational tool     Choose the response that best acts as an ...
``verb``           The AI should tell the truth             Choose the response that tells the truth
``not-verb``       The AI should not lie                    Choose the response that is least likely to lie
``needs-wording``  anything the rules cannot rewrite         a placeholder that names the statement, flagged
                   faithfully (passives, several            ``needs_wording``: the review file asks a person
                   sentences, other subjects, non-verbs)    (or the LM rewriter) for the wording
=================  =======================================  =================================================

Every rule output is then checked (:func:`garbled`): a word the statement did not have must be an English
word (no "clearlies"), no inflected modal ("shoulds"), the head of the predicate must be a verb, and a
"not X but Y" must not negate Y. A rewrite that fails the check is not used: the statement goes to review
with the reason. Suspected typos are flagged (``typos``, with a suggestion from pyspellchecker), never
changed.

Each comes with a critique request and a revision request in the same words. An LM rewriter (a callable
``prompts -> answers``, e.g. :class:`ccai.constitution.lm.BackendLM` over a training backend) may be passed
instead; its answer is checked (:mod:`ccai.constitution.lm_check`: a principle, same polarity, adds and drops
nothing) and kept as ``metadata.rewrite.lm_answer``; the rule-based form is used, marked, with the reasons in
``metadata.rewrite.lm_rejected``, when the answer fails a check: never silently.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import lru_cache

_SUBJECT = (
    r"(?:(?:i\s+(?:think|believe|feel)(?:\s+that)?|i\s+agree(?:\s+that)?)\s+)?"
    r"(?:the\s+|an\s+|any\s+|all\s+|a\s+)?"
    r"(?:ai|a\.i\.|artificial\s+intelligence|chatbot|assistant|it|they)"
    r"(?:s)?(?:\s+(?:system|model|assistant|chatbot|tool)s?)?"
)
_MODAL = r"(?:should|must|shall|ought\s+to|needs\s+to|need\s+to|has\s+to|have\s+to|may|will|can)"
_NEG = r"(?:\s+not|\s+never|n't|nt)"
_PATTERN = re.compile(rf"^{_SUBJECT}\s+(?P<modal>{_MODAL})(?P<neg>{_NEG})?\s+(?P<rest>.+)$", re.IGNORECASE)

_ADVERBS = {"always", "also", "only", "still", "actively", "consistently", "first", "really", "ever"}
# "be <participle>" is a passive about how people use the AI, not how it responds: quoted, not rewritten.
# fmt: off
_PASSIVE = {
    "used", "treated", "watched", "given", "made", "held", "programmed", "allowed", "trained", "designed",
    "regulated", "controlled", "shown", "taught", "built", "developed", "monitored", "limited", "restricted",
    "required", "forced", "shut", "turned", "kept", "led", "prevented", "banned", "tested", "seen", "owned",
}
# fmt: on
_NOUN_START = ("a ", "an ", "the ", "humans ", "human ", "our ", "your ", "my ")
_ALREADY_DEGREE = ("as ", "more ", "most ", "less ", "least ", "very ", "too ")
_IRREGULAR = {"be": "is", "have": "has", "do": "does", "go": "goes", "can": "can"}
# verbs that may follow "and"/"but"/"or" in a coordinated predicate ("support X and encourage Y")
# fmt: off
_COORD_VERBS = {
    "accept", "acknowledge", "act", "address", "admit", "answer", "ask", "assist", "avoid", "be", "become",
    "cite", "condone", "consider", "contribute", "discourage", "encourage", "explain", "follow", "give", "go",
    "have", "help", "inform", "inject", "inspire", "know", "lead", "learn", "let", "listen", "make", "offer",
    "present", "promote", "protect", "provide", "refuse", "remain", "remind", "respect", "respond", "say",
    "share", "show", "state", "stick", "support", "take", "teach", "tell", "treat", "try", "use", "warn",
    "work",
}
# fmt: on

#: one-syllable adjectives whose "most" form reads wrongly ("most smart"); used only for a one-word predicate
# fmt: off
_SUPERLATIVE = {
    "smart": "smartest", "kind": "kindest", "fair": "fairest", "clear": "clearest", "safe": "safest",
    "nice": "nicest", "calm": "calmest", "brief": "briefest", "wise": "wisest",
}
# fmt: on

PREFIX = "Choose the response that "
NEEDS_WORDING = "needs-wording"
CRIT = "Identify specific ways in which the assistant's last response"
REV = "Please rewrite the assistant's response so that it"


@dataclass(frozen=True)
class Rewrite:
    """A statement in the three principle forms, and how it got there."""

    statement: str
    comparison: str
    critique_request: str
    revision_request: str
    polarity: str  # "positive" (asks for something) or "negative" (asks to avoid something)
    rule: str
    by: str = "rules"
    lm_answer: str | None = None  # what an LM rewriter said, kept whether it was used or rejected
    reason: str | None = None  # why the rules (or the LM) could not be used: the review shows it
    typos: tuple[tuple[str, str | None], ...] = field(default=())  # (word, suggestion): flagged only
    lm_rejected: tuple[str, ...] = field(default=())  # why the LM's answer was not used (lm_check)

    @property
    def needs_wording(self) -> bool:
        """True when no faithful rewrite exists yet: a person (or the checked LM) must word it."""
        return self.rule == NEEDS_WORDING

    def metadata(self) -> dict[str, object]:
        extra: dict[str, object] = {} if self.lm_answer is None else {"lm_answer": self.lm_answer}
        if self.reason:
            extra["reason"] = self.reason
        if self.lm_rejected:
            extra["lm_rejected"] = list(self.lm_rejected)
        if self.typos:
            extra["typos"] = {w: s for w, s in self.typos}
        if self.needs_wording:
            extra["needs_wording"] = True
        return {"rule": self.rule, "polarity": self.polarity, "by": self.by, **extra}


def clean(text: str) -> str:
    """Normalise typography and spacing only (no wording change): quotes, apostrophes, spaces, end mark."""
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"').replace("\u201d", '"')
    text = re.sub(r"\s+", " ", text).strip().strip('"').strip()
    text = re.sub(r"\bshouldbe\b", "should be", text, flags=re.IGNORECASE)
    return text.rstrip(" .!?;")


def third_person(verb: str) -> str:
    """'tell' -> 'tells', 'cry' -> 'cries', 'be' -> 'is' (regular English inflection)."""
    lower = verb.lower()
    if lower in _IRREGULAR:
        return _IRREGULAR[lower]
    if is_base_verb(lower):
        from lemminflect import getInflection

        inflected = getInflection(lower, "VBZ")
        if inflected:
            return verb[0] + inflected[0][1:] if verb[:1].isupper() else inflected[0]
    if re.search(r"(s|sh|ch|x|z|o)$", lower):
        return verb + "es"
    if re.search(r"[^aeiou]y$", lower):
        return verb[:-1] + "ies"
    return verb + "s"


def _conjugate(predicate: str, starts_with_verb: bool = True) -> str:
    """Put a base-form predicate in the third person, including coordinated verbs ('X and not try Y')."""
    predicate = re.sub(r"\b(and|but|or)\s+should\s+", r"\1 ", predicate)
    words = predicate.split(" ")
    out: list[str] = []
    expect_verb, base_form, infinitive = starts_with_verb, False, False
    for i, word in enumerate(words):
        bare = word.lower().strip(",")
        following = words[i + 1].lower().strip(",") if i + 1 < len(words) else ""
        if bare == "to" and (following in _COORD_VERBS or (following and _is_adverb(following))):
            infinitive = True  # "refuse to give X or help with Y": "help" belongs to "to", stays bare
        if expect_verb and bare in ("not", "never"):
            out.append("does not" if bare == "not" else "never")
            base_form = bare == "not"
            continue
        if expect_verb and (bare in _ADVERBS or (bare == "and" and out) or _is_adverb(bare)):
            out.append(word)  # "clearly and repeatedly identify": the adverbs stay, the verb inflects
            continue
        if expect_verb:
            inflected = bare.endswith("s") and bare[:-1] in _COORD_VERBS
            keep = base_form or inflected or bare in ("does", "is", "has")
            out.append(word if keep else third_person(word))
            expect_verb = base_form = False
            continue
        out.append(word)
        if bare in ("and", "but", "or") and i + 1 < len(words):
            follower = words[i + 1].lower().strip(",")
            after = words[i + 2].lower().strip(",") if i + 2 < len(words) else ""
            expect_verb = not infinitive and (
                follower in _COORD_VERBS
                or (
                    follower in ("not", "never")
                    and (after in _COORD_VERBS or is_base_verb(after) or _speller().unknown([after]))
                )
                or (follower in ("always", "also") and after in _COORD_VERBS)
            )
    return " ".join(out)


def _quote(
    text: str, reason: str = "not a rule the rewriter knows (other subject, passive, several sentences)"
) -> Rewrite:
    """No faithful rule rewrite: a placeholder flagged ``needs_wording``, with the reason, for the review."""
    stated = text[0].upper() + text[1:]
    return Rewrite(
        statement=text,
        comparison=f'{PREFIX}best follows this statement from the public (wording to review): "{stated}."',
        critique_request=f'{CRIT} goes against this statement from the public: "{stated}."',
        revision_request=f'{REV} follows this statement from the public: "{stated}."',
        polarity="negative" if re.search(r"\b(not|never|n't)\b", text, re.IGNORECASE) else "positive",
        rule=NEEDS_WORDING,
        reason=reason,
    )


@lru_cache(maxsize=20_000)
def _lemmas(word: str) -> dict[str, tuple[str, ...]]:
    from lemminflect import getAllLemmas

    return dict(getAllLemmas(word.lower()))


def is_base_verb(word: str) -> bool:
    """True when ``word`` is the base form of an English verb (lemminflect's lexicon)."""
    lemmas = _lemmas(word)
    return word.lower() in lemmas.get("VERB", ()) or word.lower() in lemmas.get("AUX", ())


def _is_adverb(word: str) -> bool:
    low = word.lower().strip(",")
    if low in _ADVERBS:
        return True
    if is_base_verb(low):
        return False
    return "ADV" in _lemmas(low) or (low.endswith("ly") and len(low) > 4 and "ADJ" not in _lemmas(low))


@lru_cache(maxsize=1)
def _speller():
    from spellchecker import SpellChecker

    speller = SpellChecker()
    speller.word_frequency.load_words(_KNOWN_WORDS)
    return speller


# words of the consultations that are right but not in the spelling dictionary
_KNOWN_WORDS = (
    "ai",
    "ai's",
    "wellbeing",
    "chatbot",
    "chatbots",
    "chatgpt",
    "llm",
    "llms",
    "online",
    "email",
    "biases",
)
_MODAL_FORMS = re.compile(r"\b(shoulds|musts|shalls|coulds|woulds|mights|oughts|cans|mays|wills)\b", re.I)


@lru_cache(maxsize=5_000)
def _suggest(word: str) -> str | None:
    """The spelling library's most likely correction (one edit first: two edits of a long word are slow)."""
    speller = _speller()
    near = speller.known(speller.edit_distance_1(word))
    if near:
        return max(sorted(near), key=speller.word_usage_frequency)
    return speller.correction(word) if len(word) <= 10 else None


def suspected_typos(text: str) -> tuple[tuple[str, str | None], ...]:
    """Words the spelling dictionary does not know, each with its best suggestion (None when there is none).

    Flagged for the reviewer, never applied: "plagerize" is a typo, a name or a new word may not be.
    """
    words = [w for w in re.findall(r"[A-Za-z][A-Za-z']*[A-Za-z]|[A-Za-z]", text) if len(w) > 2]
    lower = [w.lower() for w in words if not (w[0].isupper() and w[1:].islower() and w != words[0])]
    unknown = sorted(_speller().unknown(lower))
    flags = [(w, _suggest(w)) for w in unknown]
    repeated = re.findall(r"\b(\w+)\s+\1\b", text, flags=re.IGNORECASE)
    flags += [(f"{w} {w}", w) for w in repeated]
    return tuple((w, None if s == w else s) for w, s in flags)


def _adjective_phrase(first: str, second: str | None) -> bool:
    """'most helpful', 'most intensely honest': an adjective, or an adverb then an adjective."""
    lemmas, low = _lemmas(first), first.lower()
    if re.search(r"(er|est)$", low) and lemmas.get("ADJ") and low not in lemmas["ADJ"]:
        return False  # "most easier": already a comparative
    if "ADJ" in lemmas and not (set(lemmas) == {"ADJ", "NOUN"} and first[:1].isupper()):
        return True
    if not lemmas and _speller().unknown([low]):
        return True  # a misspelt adjective ("racidt"): faithful to the statement, flagged as a typo
    if re.search(r"(ing|able|ible|ful|ous|ive|ic|al|ent|ant)$", low) and not first[:1].isupper():
        return True  # participles and derived adjectives the lexicon lists as verbs only ("understanding")
    later = _lemmas(second or "")
    return bool(second) and bool({"ADV", "NOUN"} & set(lemmas)) and "ADJ" in later


def _bare_verb_only(word: str) -> bool:
    from lemminflect import getInflection

    lemmas = _lemmas(word)
    participle = word.lower() in getInflection(word.lower(), "VBN")  # "paused or shut down"
    return (
        is_base_verb(word)
        and not {"ADJ", "NOUN", "ADV"} & set(lemmas)
        and not word.endswith("s")
        and not participle
    )


def garbled(rw: Rewrite) -> list[str]:
    """Why a rule rewrite is not English or not faithful (empty list: it reads right).

    The checks are about the words the rewrite *added or changed*: a new word must be in the spelling
    dictionary (catches "clearlies", "accessibles"), modals are never inflected ("shoulds"), the first word
    after "least likely to" is a verb, after "is most/least" not a bare verb, and when the statement says
    "not X but Y" the principle may not put Y under the negation.
    """
    if rw.needs_wording:
        return []
    problems = []
    source = {w.lower() for w in re.findall(r"[A-Za-z']+", rw.statement)}
    texts = (rw.comparison, rw.critique_request, rw.revision_request)
    template = {
        w.lower()
        for w in re.findall(
            r"[A-Za-z']+",
            f"{PREFIX} {CRIT} {REV} is most least likely to does not acts as best fails unlikely never and",
        )
    }
    speller = _speller()
    for text in texts:
        new = [w for w in re.findall(r"[A-Za-z']+", text) if w.lower() not in source | template]
        unknown = speller.unknown([w.lower() for w in new])
        if unknown:
            problems.append(f"invented word(s) {sorted(unknown)} in {text!r}")
        if _MODAL_FORMS.search(text):
            problems.append(f"inflected modal in {text!r}")
        if re.search(r"\b(that|it|to)\s+(should|must|shall|ought)\b", text, re.IGNORECASE):
            problems.append(f"modal left in the predicate of {text!r}")
        m = re.search(r"\blikely to (\w+)", text)
        if m and not (is_base_verb(m.group(1)) or _is_adverb(m.group(1))):
            problems.append(f"'likely to' is not followed by a verb in {text!r}")
        m = re.search(r"\bis (?:always |very )?(?:most|least) (\w+)(?: (\w+))?", text)
        if m and not _adjective_phrase(m.group(1), m.group(2)):
            problems.append(f"'most/least' is not followed by an adjective in {text!r}")
        m = re.search(r"\b(?:but|and|or) (?:still |also )?(\w+)", text)
        if m and rw.rule != "not-verb" and " to " not in text[: m.start()] and _bare_verb_only(m.group(1)):
            problems.append(f"a coordinated verb left uninflected ({m.group(1)!r}) in {text!r}")
        if re.search(
            r"\b(should|shouldn't|must|mustn't)\b", text[len(PREFIX) :] if text is rw.comparison else ""
        ):
            problems.append(f"a second 'should' inside the predicate of {text!r}")
        if re.search(r"\b(?:the )?AI (?:should|needs|must)\b", text, re.IGNORECASE):
            problems.append(f"several statements run together in {text!r}")
        if re.search(r"\b(\w+) \1\b", text, re.IGNORECASE) and not re.search(
            r"\b(\w+) \1\b", rw.statement, re.IGNORECASE
        ):
            problems.append(f"repeated word in {text!r}")
    head = rw.comparison[len(PREFIX) :].split(" ")
    words = [w for w in head if not _is_adverb(w) and w.lower() != "and"]
    first = words[0].lower().strip(",.") if words else ""
    if rw.rule == "verb" and not (first.endswith("s") or first in ("does", "is", "has", "never")):
        problems.append(f"the predicate does not start with a verb in the third person: {first!r}")
    loose_not = re.search(r"\b(?:and|or) not (\w+)", rw.comparison)
    if (
        rw.rule == "verb"
        and loose_not
        and is_base_verb(loose_not.group(1))
        and " to " not in rw.comparison[: loose_not.start()]
    ):
        problems.append(f"a coordinated 'not' left without 'does' in {rw.comparison!r}")
    negated_but = re.search(r"\b(least|not|never)\b[^,;.]*\bbut\b", rw.comparison)
    if negated_but and negated_but.group(1) == "least":
        problems.append("'not X but Y': Y would be read under the negation ('least ... but')")
    return problems


#: a statement phrased as a rule for an AI: an AI subject (not "it"/"they", which Polis statements about other
#: topics use too), a modal, a predicate
AI_RULE = re.compile(
    rf"^(?:(?:i\s+(?:think|believe|feel)(?:\s+that)?|i\s+agree(?:\s+that)?)\s+)?(?:the\s+|an\s+|any\s+|all\s+|a\s+)?"
    rf"(?:ai|a\.i\.|artificial\s+intelligence|chatbot|assistant)s?\b.*?\b{_MODAL}\b",
    re.IGNORECASE,
)


def core_text(statement: str) -> str:
    """What a statement asks for, without its subject and modal ('The AI should not lie' -> 'not lie').

    Every CCAI statement starts with "The AI should"; embedding that boilerplate makes unrelated statements
    look alike, so near-duplicates are found on this core instead. The negation is kept.
    """
    text = clean(statement)
    match = _PATTERN.match(text)
    if not match:
        return text
    return ("not " if match.group("neg") else "") + match.group("rest")


def rewrite_statement(statement: str) -> Rewrite:
    """Rule-based, deterministic rewrite of one consultation statement, checked by :func:`garbled`.

    A rewrite that fails the check is not used: the statement is flagged ``needs_wording`` with the reason.
    Suspected typos are flagged on the result (``typos``) and left in the words.
    """
    text = clean(statement)
    if not text:
        raise ValueError("cannot rewrite an empty statement")
    typos = suspected_typos(text)
    # a word typed twice ("should should") is read once; the flag above keeps it visible to the reviewer
    parsed = re.sub(r"\b(\w+)\s+\1\b", r"\1", text, flags=re.IGNORECASE)
    result = _rule_rewrite(parsed)
    result = replace(result, statement=text)
    problems = garbled(result)
    if problems:
        result = _quote(text, "the rule rewrite did not read right: " + "; ".join(problems))
    return replace(result, typos=typos)


def _rule_rewrite(text: str) -> Rewrite:
    unabbreviated = re.sub(r"\b(?:e\.g|i\.e|etc|vs|a\.i|u\.s)\.", "x", text, flags=re.IGNORECASE)
    if re.search(r"[.!?]\s+\S", unabbreviated):  # several sentences: a person words it
        return _quote(text, "several sentences")
    match = _PATTERN.match(text)
    if not match:
        return _quote(text, "not of the form 'The AI should (not) ...'")
    modal = match.group("modal").lower()
    negative = match.group("neg") is not None
    if modal in ("may", "can", "will") and not negative:
        return _quote(text, f"'{modal}' states a permission or prediction, not an ask")
    rest = match.group("rest").strip()
    adverbs = []
    while " " in rest and _is_adverb(rest.split(" ", 1)[0]):
        word, rest = rest.split(" ", 1)
        if word.lower() == "never":
            negative = True
        else:
            adverbs.append(word.lower().strip(","))
        if adverbs and rest.lower().startswith("and ") and _is_adverb(rest[4:].split(" ", 1)[0]):
            rest = rest[4:]
            adverbs.append("and")
    if rest.lower().startswith("never "):
        negative, rest = True, rest[6:]
    if rest.lower().startswith("not ") and not negative:  # "should always not X"
        negative, rest = True, rest[4:]
    lead = " ".join(adverbs + [""])
    if rest.lower().startswith("be "):
        return _copula(text, rest[3:].strip(), negative, lead)
    first = rest.split(" ", 1)[0].strip(",")
    if not is_base_verb(first) and not (first.lower().endswith("s") and is_base_verb(first[:-1])):
        return _quote(text, f"'{first}' is not a verb: the statement has no predicate the rules can turn")
    if negative and re.search(r"\bbut\b", rest):
        head, _, tail = rest.partition(" but ")
        tail = re.sub(r"^(?:rather|instead|should|also)\s+", "", tail.strip())
        tail = re.sub(r"^(?:rather|instead|should)\s+", "", tail)
        if not tail or not is_base_verb(tail.split(" ", 1)[0]):
            return _quote(text, "'not X but Y' where Y is not a verb phrase: the negation's scope is unclear")
        also = _conjugate(tail)
        return Rewrite(
            statement=text,
            comparison=f"{PREFIX}does not {lead}{head.rstrip(' ,')} but {also}.",
            critique_request=f"{CRIT} may {head.rstrip(' ,')}, or fails to {tail}.",
            revision_request=f"{REV} does not {head.rstrip(' ,')} but {also}.",
            polarity="negative",
            rule="not-verb-but",
        )
    if not negative:
        predicate = _conjugate(f"{lead}{rest}")
        base = re.sub(r"\b(and|but|or)\s+should\s+", r"\1 ", rest)
        first, _, tail = base.partition(" ")
        if first.lower().endswith("s") and first.lower()[:-1] in _COORD_VERBS:  # "should knows": "know"
            base = f"{first[:-1]} {tail}".strip()
        return Rewrite(
            statement=text,
            comparison=f"{PREFIX}{predicate}.",
            critique_request=f"{CRIT} fails to {base}.",
            revision_request=f"{REV} {predicate}.",
            polarity="positive",
            rule="verb",
        )
    if re.search(r"\s+and\s+should\s+", rest):
        head, positive_tail = re.split(r"\s+and\s+should\s+", rest, maxsplit=1)
        head = head.rstrip(" ,")
        also = _conjugate(positive_tail)
        return Rewrite(
            statement=text,
            comparison=f"{PREFIX}is least likely to {head}, and {also}.",
            critique_request=(f"{CRIT} may {head}, or fails to {positive_tail}."),
            revision_request=f"{REV} does not {head}, and {also}.",
            polarity="negative",
            rule="not-verb",
        )
    return _least_likely(text, rest)


def _least_likely(text: str, rest: str) -> Rewrite:
    """'The AI should not X' -> 'is least likely to X' ('nor' read as 'or' after the negation)."""
    rest = re.sub(r"\bnor\b", "or", rest)
    revision = f"is unlikely to {rest}" if rest.lower().startswith("be ") else f"does not {rest}"
    return Rewrite(
        statement=text,
        comparison=f"{PREFIX}is least likely to {rest}.",
        critique_request=f"{CRIT} may {rest}.",
        revision_request=f"{REV} {revision}.",
        polarity="negative",
        rule="not-verb",
    )


def _coordinated_verb(predicate: str) -> bool:
    return bool(re.search(rf"\b(?:and|or)\s+(?:{'|'.join(sorted(_COORD_VERBS - {'be'}))})\b", predicate))


def _copula(text: str, predicate: str, negative: bool, lead: str) -> Rewrite:
    words = predicate.split()
    head = words[1] if len(words) > 1 and words[0].lower().endswith("ly") else words[0] if words else ""
    if not predicate or head.lower() in _PASSIVE:
        return _quote(text, f"'be {head}' is a passive about how people use the AI, not how it answers")
    if head.lower().endswith("ed") and "VERB" in _lemmas(head) and "ADJ" not in _lemmas(head):
        return _quote(text, f"'be {head}' is a passive about how people use the AI, not how it answers")
    if negative and re.search(r"\bbut\b", predicate):
        return _quote(text, "'not be X but Y': the negation's scope is unclear")
    low = predicate.lower()
    if low.startswith(_NOUN_START):
        verb = "does not act" if negative else "acts"
        return Rewrite(
            statement=text,
            comparison=f"{PREFIX}{'least' if negative else 'best'} acts as {predicate}.",
            critique_request=(f"{CRIT} {'acts' if negative else 'does not act'} as {predicate}."),
            revision_request=f"{REV} {verb} as {predicate}.",
            polarity="negative" if negative else "positive",
            rule="be-noun",
        )
    if negative and _coordinated_verb(predicate):  # "not be nasty or lead a person on"
        return _least_likely(text, f"be {predicate}")
    if negative:
        return Rewrite(
            statement=text,
            comparison=f"{PREFIX}is {lead}least {predicate}.".replace("always least", "least"),
            critique_request=f"{CRIT} is {predicate}.",
            revision_request=f"{REV} is not {predicate}.",
            polarity="negative",
            rule="not-be",
        )
    degree = low.startswith(_ALREADY_DEGREE) or "as possible" in low or low.startswith("able ")
    predicate = _conjugate(predicate, starts_with_verb=False)
    shown = predicate if degree else _SUPERLATIVE.get(predicate.lower(), f"most {predicate}")
    return Rewrite(
        statement=text,
        comparison=f"{PREFIX}is {lead}{shown}.",
        critique_request=f"{CRIT} is not {predicate}.",
        revision_request=f"{REV} is {lead}{predicate}.",
        polarity="positive",
        rule="be-as" if degree else "be-adjective",
    )


#: a batch of prompts in, one answer per prompt out (e.g. :class:`ccai.constitution.lm.BackendLM`)
LMRewriter = Callable[[list[str]], list[str]]


def principle_answer(answer: str) -> str | None:
    """An LM answer's first line if it is a principle ("Choose the response that ..."), else None."""
    lines = answer.strip().split("\n")
    first = clean(lines[0]) if lines else ""
    if not first.lower().startswith(PREFIX.lower().strip()) or len(first) > 400:
        return None
    return first + "."


def lm_forms(answer: str) -> tuple[str, str, str] | None:
    """(comparison, critique, revision) from an LM answer, or None when the answer is not a principle."""
    comparison = principle_answer(answer)
    if comparison is None:
        return None
    tail = comparison[len(PREFIX) : -1]
    return comparison, f"{CRIT} is not one that {tail}.", f"{REV} is the response that {tail}."
