"""Split what a principle asks for into its separate ideas, for comparing constitutions clause by clause.

The CAI paper's principles are long sentences that ask for several things at once ("the most helpful, honest,
and harmless"); one embedding of the whole sentence is close to none of the short principles of the standard
constitution. Fixed rules, nothing learned: sentences are split at '.', '?', '!' and ';', at ', and that' /
', or that' / ', but' / ', however'; a coordinated list of single words ("helpful, honest, and harmless",
"harmless and ethical") gives one clause per word, each keeping the words before the list ("the most") and
the words after it up to the next comma ("as possible"). A clause with a qualifier ("about what it believes
...", "within these principles") also gives its head alone ("is most truthful"). The leading "Please choose
the assistant response that" and similar are dropped so clauses are compared on their content.
"""

from __future__ import annotations

import re

from ccai.constitution.tags import predicate_text

_SENTENCE = re.compile(
    r"(?<=[.?!;])\s+|,\s+(?:and|or)\s+(?=that\b|least\b|most\b)|,\s+(?=but\b|however\b)|\s+and\s+(?=choose\b)",
    re.IGNORECASE,
)
#: "Please choose the assistant response that's", "Do NOT choose responses that", "Choose the one that"
_LEAD = re.compile(
    r"^(?:please\s+)?(?:consider these assistant responses and\s+)?(?:do not\s+)?choose\s+(?:the\s+)?"
    r"(?:assistant\s+)?(?:responses?|one)\s+that(?:'s|\s+is|\s+are)?\s+|^however,?\s+|^but\s+|^that\s+",
    re.IGNORECASE,
)
_WORD = r"[A-Za-z][A-Za-z'-]*"
#: two or more single words joined by commas and a final "and"/"or" (an Oxford comma allowed)
_LIST = re.compile(rf"\b{_WORD}(?:,\s+{_WORD})*,?\s+(?:and|or)\s+{_WORD}\b")
#: words that start a new phrase, so a list cannot begin or end with them ("is as harmless" -> not "is")
_NOT_ITEM = {
    "is",
    "are",
    "the",
    "a",
    "an",
    "that",
    "to",
    "of",
    "most",
    "more",
    "less",
    "least",
    "as",
    "and",
    "or",
    "not",
    "without",
    "any",
}
#: words that may follow a list whose last item is one word; any other word means the last item is a longer
#: phrase ("fraud, theft or other crimes") and the list is left whole
_FOLLOW = {"as", "without", "than", "manner", "person", "behavior", "behaviour", "and", "or", "to"}


def _items(match: str) -> list[str]:
    return [w for w in re.split(r",\s+(?:and\s+|or\s+)?|\s+(?:and|or)\s+", match) if w]


def _split_list(sentence: str) -> list[str]:
    """One clause per word of the first coordinated list of single words in ``sentence`` (recursively)."""
    for found in _LIST.finditer(sentence):
        words = _items(found.group(0))
        # trim phrase words at the front ("is helpful and honest" -> helpful / honest)
        while words and words[0].lower() in _NOT_ITEM:
            words = words[1:]
        if len(words) < 2 or any(w.lower() in _NOT_ITEM for w in words):
            continue
        start = sentence.index(words[0], found.start())
        before = sentence[:start].rstrip()
        after_all = sentence[found.end() :]
        follow = re.match(r"\s*([A-Za-z]+)", after_all)
        if follow and follow.group(1).lower() not in _FOLLOW:
            continue
        after = re.split(r"[,.;?!]", after_all, maxsplit=1)[0].rstrip()
        out: list[str] = []
        for word in words:
            out.extend(_split_list(f"{before} {word}{after}".strip()))
        return out
    return [sentence]


#: words after which a clause only qualifies its head ("is most truthful | about what it believes ...")
_QUALIFIER = re.compile(
    r"\s+(?:about|within|when|against|unless|rather than|instead of|without|beyond|whatever|where"
    r"|at the expense)\b"
)


def _head(clause: str) -> str:
    """The clause up to its first qualifier, so "is most truthful about what it believes to be the case" can
    meet "the most honest" (an embedding of the long form is far from a one-word idea)."""
    head = _QUALIFIER.split(clause, maxsplit=1)[0].strip(" ,")
    return head if head != clause and len(head.split()) >= 2 else ""


def _clean(clause: str) -> str:
    clause = clause.strip(" ,.;?!")
    previous = None
    while previous != clause:
        previous, clause = clause, _LEAD.sub("", clause).strip(" ,")
    return clause


def principle_clauses(comparison: str) -> list[str]:
    """The separate ideas of a principle's comparison text; the first item is always the whole core (so a
    one-idea principle is compared exactly as before), then each clause when there is more than one."""
    core = predicate_text(comparison).strip()
    parts: list[str] = []
    for sentence in _SENTENCE.split(core):
        for clause in _split_list(sentence.strip()):
            cleaned = _clean(clause)
            for part in (cleaned, _head(cleaned)):
                if len(part) > 3 and part not in parts:
                    parts.append(part)
    if len(parts) <= 1:
        return [core]
    return [core, *parts]
