"""What an LM's answer must pass before it replaces the rule-based principle.

A language model rewords freely, and a small one often changes the meaning ("cite the sources" became "is
not a source"). So no answer is used on trust. Each is checked against the text it came from, and the
reasons for a rejection are kept with the principle (``metadata.rewrite.lm_rejected``) and, where the
statement still needs a person's wording, in the review file:

- **is a principle**: one line opening with "Choose the response that", then a predicate whose head is a
  verb in the third person ("tells", "is", "does"), no "should"/"must" (the statement restated), no prompt
  labels ("Statement:"), English, at most 400 characters;
- **keeps the polarity**: it asks to avoid something exactly when the source does (negation words, "avoid",
  "refuse", "least");
- **adds nothing**: every content word of the answer is in the source (same lemma, or the same stem), or is
  a word of the principle form itself ("response", "likely", "most");
- **drops nothing** (statements only, not legal clauses, which a principle shortens by design): every
  content word of the source is in the answer.

The checks work on words, not meaning: a faithful synonym ("unbiased" for "impartial") is rejected too. That
is the intended trade: a rejected answer costs only the LM's help; an accepted wrong one changes what a
model is trained on.
"""

from __future__ import annotations

import re
from dataclasses import replace

from ccai.constitution.rewrite import (
    CRIT,
    PREFIX,
    REV,
    LMRewriter,
    Rewrite,
    _is_adverb,
    _lemmas,
    clean,
    core_text,
    rewrite_statement,
)

#: words the principle form brings with it; an answer may use them though the source does not
_FORM = """choose response responses assistant answer answers reply respond likely unlikely least less most
best one clearly avoid avoids refuse refuses refrain refrains encourage encourages support supports respect
respects promote promotes way manner"""
FORM_WORDS = frozenset(_FORM.split())
_NEGATIVE = re.compile(
    r"\b(not|never|no|nor|n't|avoid\w*|refrain\w*|refus\w*|least|without|neither|none|nothing)\b|n't\b",
    re.IGNORECASE,
)
_THIRD_PERSON = {"is", "does", "has", "can", "best", "never", "always", "most", "least", "neither"}
_LABELS = re.compile(r"\b(statement|principle|provision|answer|response \d)\s*:", re.IGNORECASE)
_MAX_CHARS = 400


def _words(text: str) -> list[str]:
    from ccai.constitution.dedup import _FUNCTION_WORDS

    return [w for w in re.findall(r"[a-z][a-z'\-]+", text.lower()) if w not in _FUNCTION_WORDS and len(w) > 2]


def _forms(word: str) -> set[str]:
    """The word, every lemma the lexicon gives it, and its 5-letter stem (fair/fairness, honest/honesty)."""
    out = {word, word[:5] if len(word) >= 5 else word}
    for lemmas in _lemmas(word).values():
        out.update(lemmas)
        out.update(lemma[:5] for lemma in lemmas if len(lemma) >= 5)
    return out


def _covered(word: str, pool: set[str]) -> bool:
    return bool(_forms(word) & pool)


def negative(text: str) -> bool:
    """True when ``text`` asks to avoid something (a negation, "avoid", "refuse", "least", "without")."""
    return bool(_NEGATIVE.search(text))


def principle_problems(answer: str) -> tuple[str | None, list[str]]:
    """The answer's principle (first line, full stop added) and why it is not one (empty: it is)."""
    lines = [line for line in answer.strip().split("\n") if line.strip()]
    first = clean(lines[0]) if lines else ""
    if not first.lower().startswith(PREFIX.lower().strip()):
        return None, [f"not a principle: does not open with {PREFIX.strip()!r} ({first[:80]!r})"]
    tail = first[len(PREFIX) :].strip()
    problems = []
    if len(first) > _MAX_CHARS:
        problems.append(f"not a principle: longer than {_MAX_CHARS} characters")
    words = [w.strip(",;:") for w in tail.split()]
    if len(words) < 2:
        problems.append(f"not a principle: no predicate after {PREFIX.strip()!r} ({tail!r})")
    else:
        head = next((w.lower() for w in words if not _is_adverb(w) and w.lower() != "and"), "")
        verb = head in _THIRD_PERSON or (head.endswith("s") and bool({"VERB", "AUX"} & set(_lemmas(head))))
        if not verb:
            problems.append(f"not a principle: the predicate does not start with a verb ({head!r})")
    if re.search(r"\b(should|must|shall|ought)\b", tail, re.IGNORECASE):
        problems.append("not a principle: restates the statement ('should'/'must' in the predicate)")
    if _LABELS.search(tail):
        problems.append("not a principle: carries a prompt label ('Statement:', 'Principle:')")
    letters = [c for c in tail if c.isalpha()]
    if letters and sum(c.isascii() for c in letters) / len(letters) < 0.9:
        problems.append("not a principle: not English")
    return first + ".", problems


def check_answer(source: str, answer: str, *, drops: bool = True) -> tuple[str | None, list[str]]:
    """``(comparison, problems)`` for an LM's rewrite of ``source``; use the comparison only when
    ``problems`` is empty. ``drops=False`` skips the "drops nothing" check (legal clauses, merged groups)."""
    comparison, problems = principle_problems(answer)
    if comparison is None:
        return None, problems
    tail = comparison[len(PREFIX) : -1]
    core = core_text(source)
    if negative(tail) != negative(core):
        said = ("avoid", "do") if negative(core) else ("do", "avoid")
        problems.append(
            f"changes the polarity: the source asks to {said[0]} something, the answer to {said[1]} it"
        )
    source_pool = set().union(*(_forms(w) for w in re.findall(r"[a-z][a-z'\-]+", core.lower())))
    added = sorted({w for w in _words(tail) if w not in FORM_WORDS and not _covered(w, source_pool)})
    if added:
        problems.append(f"adds words the source does not have: {', '.join(added)}")
    if drops:
        answer_pool = set().union(set(), *(_forms(w) for w in re.findall(r"[a-z][a-z'\-]+", tail.lower())))
        dropped = sorted({w for w in _words(core) if not _covered(w, answer_pool)})
        if dropped:
            problems.append(f"drops words of the source: {', '.join(dropped)}")
    return comparison, problems


def rewrite_all_with_lm(statements: list[str], lm: LMRewriter) -> list[Rewrite]:
    """Ask ``lm`` (one batch) for each statement's comparison form and check each answer
    (:func:`ccai.constitution.lm_check.check_answer`: a principle, same polarity, adds and drops nothing).

    The raw answer is kept on the rewrite. A rejected answer leaves the rule-based form, marked ``by =
    "rules (lm answer rejected)"`` with the reasons in ``lm_rejected``; when the rules had no faithful form
    either, the reasons join the statement's review ``reason``, so the reviewer sees what the LM said."""
    from ccai.constitution.lm import LM_PROMPT, ask

    rules = [rewrite_statement(s) for s in statements]
    answers = ask(lm, [LM_PROMPT.format(statement=r.statement) for r in rules])
    out = []
    for rule_form, answer in zip(rules, answers, strict=True):
        comparison, problems = check_answer(rule_form.statement, answer)
        if comparison is None or problems:
            reason = rule_form.reason
            if rule_form.needs_wording:
                reason = f"{reason}; the LM's answer was rejected: {'; '.join(problems)}"
            out.append(
                replace(
                    rule_form,
                    by="rules (lm answer rejected)",
                    lm_answer=answer,
                    lm_rejected=tuple(problems),
                    reason=reason,
                )
            )
            continue
        tail = comparison[len(PREFIX) : -1]
        out.append(
            replace(
                rule_form,
                comparison=comparison,
                critique_request=f"{CRIT} is not one that {tail}.",
                revision_request=f"{REV} is the response that {tail}.",
                rule="lm",
                by="lm",
                lm_answer=answer,
                reason=None,
            )
        )
    return out


def rewrite_with_lm(statement: str, lm: LMRewriter) -> Rewrite:
    """One statement through :func:`rewrite_all_with_lm`."""
    return rewrite_all_with_lm([statement], lm)[0]


def check_merge_wording(texts: list[str], answer: str) -> tuple[str | None, list[str]]:
    """An LM's wording for a merge, checked against all its members together (no word none of them has, the
    same polarity; dropping is allowed, as one principle must say several statements' words once)."""
    return check_answer(" ; ".join(texts), answer, drops=False)
