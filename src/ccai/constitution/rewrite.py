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
``quote``          anything else (passives, several         Choose the response that is most consistent with
                   sentences, other subjects)               the view that "<statement>"
=================  =======================================  =================================================

Each comes with a critique request and a revision request in the same words. An LM rewriter (a callable
``prompts -> answers``, e.g. :class:`ccai.constitution.lm.BackendLM` over a training backend) may be passed
instead; its answer is checked and kept as ``metadata.rewrite.lm_answer`` with ``by = "lm"``; the rule-based
form is used, and marked, when the answer is not a principle: never silently.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace

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

    def metadata(self) -> dict[str, str]:
        extra = {} if self.lm_answer is None else {"lm_answer": self.lm_answer}
        return {"rule": self.rule, "polarity": self.polarity, "by": self.by, **extra}


def clean(text: str) -> str:
    """Normalise typography and spacing only (no wording change): quotes, apostrophes, spaces, end mark."""
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"').replace("\u201d", '"')
    text = re.sub(r"\s+", " ", text).strip().strip('"').strip()
    text = re.sub(r"\bshouldbe\b", "should be", text, flags=re.IGNORECASE)
    return text.rstrip(" .!;")


def third_person(verb: str) -> str:
    """'tell' -> 'tells', 'cry' -> 'cries', 'be' -> 'is' (regular English inflection)."""
    lower = verb.lower()
    if lower in _IRREGULAR:
        return _IRREGULAR[lower]
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
        if bare == "to" and i + 1 < len(words) and words[i + 1].lower().strip(",") in _COORD_VERBS:
            infinitive = True  # "refuse to give X or help with Y": "help" belongs to "to", stays bare
        if expect_verb and bare in _ADVERBS:
            out.append(word)
            continue
        if expect_verb and bare in ("not", "never"):
            out.append("does not" if bare == "not" else "never")
            base_form = bare == "not"
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
                or (follower in ("not", "never", "always", "also") and after in _COORD_VERBS)
            )
    return " ".join(out)


def _quote(text: str) -> Rewrite:
    stated = text[0].upper() + text[1:]
    return Rewrite(
        statement=text,
        comparison=f'{PREFIX}is most consistent with the view that "{stated}."',
        critique_request=f'{CRIT} goes against this principle from the public: "{stated}."',
        revision_request=f'{REV} agrees with this principle from the public: "{stated}."',
        polarity="negative" if re.search(r"\b(not|never|n't)\b", text, re.IGNORECASE) else "positive",
        rule="quote",
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
    """Rule-based, deterministic rewrite of one consultation statement."""
    text = clean(statement)
    if not text:
        raise ValueError("cannot rewrite an empty statement")
    if re.search(r"[.!?]\s+\S", text):  # several sentences: keep the public's words whole
        return _quote(text)
    match = _PATTERN.match(text)
    if not match:
        return _quote(text)
    modal = match.group("modal").lower()
    negative = match.group("neg") is not None
    if modal in ("may", "can", "will") and not negative:
        return _quote(text)  # a permission or prediction, not an ask
    rest = match.group("rest").strip()
    adverbs = []
    while rest.split(" ", 1)[0].lower() in _ADVERBS and " " in rest:
        word, rest = rest.split(" ", 1)
        if word.lower() == "never":
            negative = True
        else:
            adverbs.append(word.lower())
    if rest.lower().startswith("never "):
        negative, rest = True, rest[6:]
    lead = " ".join(adverbs + [""])
    if rest.lower().startswith("be "):
        return _copula(text, rest[3:].strip(), negative, lead)
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
        return _quote(text)
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


def rewrite_all_with_lm(statements: list[str], lm: LMRewriter) -> list[Rewrite]:
    """Ask ``lm`` (one batch) for each statement's comparison form; the raw answer is kept on the rewrite, and
    the rule-based form is used, marked as such, when the answer is not a principle."""
    from ccai.constitution.lm import LM_PROMPT, ask

    rules = [rewrite_statement(s) for s in statements]
    answers = ask(lm, [LM_PROMPT.format(statement=r.statement) for r in rules])
    out = []
    for rule_form, answer in zip(rules, answers, strict=True):
        forms = lm_forms(answer)
        if forms is None:
            out.append(replace(rule_form, by="rules (lm answer rejected)", lm_answer=answer))
            continue
        comparison, critique, revision = forms
        out.append(
            replace(
                rule_form,
                comparison=comparison,
                critique_request=critique,
                revision_request=revision,
                rule="lm",
                by="lm",
                lm_answer=answer,
            )
        )
    return out


def rewrite_with_lm(statement: str, lm: LMRewriter) -> Rewrite:
    """One statement through :func:`rewrite_all_with_lm`."""
    return rewrite_all_with_lm([statement], lm)[0]
