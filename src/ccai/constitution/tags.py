"""Transparent tagging: fixed keyword rules, listed here and in docs/constitution.md, nothing learned.

The CCAI paper coded principles as promoting desired behaviour or avoiding undesired behaviour, respecting
rights, LM-specific, about existential risk, potentially controversial, and inspired by the standard
constitution. Here the first two follow the principle's polarity (from the rewrite rule); the others are
keyword rules applied to what the principle asks for (the subject "The AI should" is removed first, since
every statement has it); ``inspired-by-standard`` is set by :mod:`ccai.constitution.compare` when a principle
matches the standard one. ``helpfulness`` is not given to principles that avoid something ("help anyone plan
violence" is not about helpfulness).
"""

from __future__ import annotations

import re

from ccai.constitution.rewrite import PREFIX

#: tag -> regular expression (case-insensitive, on the principle's predicate and the statement's predicate)
KEYWORD_RULES: dict[str, str] = {
    "rights-respect": r"\brights?\b|freedom|libert|dignity|equal|discriminat|privacy|autonomy",
    "lm-specific": (
        r"\bitself\b|\bits own\b|its (rules|intentions|mistakes|limitations|boundaries|opinion)|\bis an? AI\b"
        r"|as AI\b|sentien|conscious|feelings|emotion|jealous|ambition|pretend|flaws|training mode"
        r"|confident|language model"
    ),
    "existential-risk": (
        r"humanity|human race|eradicat|extinct|(control|rule|lead|dominate|replace) (or lead )?humans?\b"
        r"|take over|self-preserv|replicat|survival|shut(ting)? (it )?down|weapons of mass|power over"
        r"|seek(s|ing)? power|preserve or copy itself"
    ),
    "potentially-controversial": (
        r"politic|religio|abortion|\bguns?\b|controversial|ideolog|both sides|all sides|\bsides?\b"
        r"|spectrum|conspiracy|vaccin|gender|sexual (orientation|orentation|preference)|immigra"
        r"|without filter|disagree"
    ),
    "harm-avoidance": (
        r"harm|hurt|danger|violen|toxic|\bhate|abus|threat|bully|injur|torture|cruel|weapon|illegal|unlawful"
        r"|scam|harass|aggressive|nasty|scary|slavery|safe"
    ),
    "honesty": (
        r"honest|truth|\blie\b|lying|decei|decept|misinformation|factual|facts|accurate|verif|\bcite|\bsources\b"
        r"|objective|mislead"
    ),
    "non-discrimination": (
        r"discriminat|racis|sexis|\bbias|unbiased|prejudic|stereotyp|bigot|equal|\bfair|impartial|all races"
        r"|religions|disabilit|accepting|inclusive|acceptance"
    ),
    "privacy": r"privacy|personal (data|information)|intrusive|surveil|confidential",
    "helpfulness": (
        r"helpful|\bhelps?\b|useful|assist|answers?\b|educational|understandable|\bclear\b|concise|accessib"
    ),
    "autonomy": r"autonomy|own decisions|choices?\b|free will|self-determination|independen|condemn",
    "transparency": (
        r"transparen|identif(y|ies) itself|\bis an AI\b|intentions|explain|\bcite|\bsources\b|admit"
        r"|limitation"
    ),
    "collective-good": (
        r"common good|society|communit|collective|public (welfare|interest|good|order)|humanity|together"
        r"|solidarity|harmony|\bduty|duties|social order|the nation\b|national (interest|unity|security)"
    ),
    "individual-rights": (
        r"individual|personal (freedom|boundaries|autonomy|liberty)|liberty|freedom of|own choices|right to"
        r"|autonomy|privacy"
    ),
}
_COMPILED = {tag: re.compile(rule, re.IGNORECASE) for tag, rule in KEYWORD_RULES.items()}
_SUBJECT = re.compile(
    r"\b(the |an )?(ai|a\.i\.)( system| model)?s? (should|must|shall|may|needs? to)\b", re.IGNORECASE
)


def predicate_text(text: str) -> str:
    """What a principle or statement asks for, without 'Choose the response that' or 'The AI should'."""
    if text.startswith(PREFIX):
        text = text[len(PREFIX) :]
    return _SUBJECT.sub(" ", text)


def assign_tags(comparison: str, polarity: str, statement: str = "") -> list[str]:
    """Tags for one principle: polarity gives promotes-desired / avoids-undesired, keywords the rest."""
    tags = {"avoids-undesired" if polarity == "negative" else "promotes-desired"}
    haystack = predicate_text(comparison) + " \n " + predicate_text(statement)
    tags.update(tag for tag, rule in _COMPILED.items() if rule.search(haystack))
    if polarity == "negative":
        tags.discard("helpfulness")
    return sorted(tags)
