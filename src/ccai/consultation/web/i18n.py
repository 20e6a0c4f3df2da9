"""UI strings from a catalogue (``i18n/<lang>.json``): English and German, more by adding a file.

The language comes from ``?lang=``, then the ``ccai_lang`` cookie, then the browser's Accept-Language;
a missing key falls back to English, and a key missing there is shown as the key (so it is noticed).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

CATALOGUES = Path(__file__).with_name("i18n")
DEFAULT = "en"


@cache
def catalogue(lang: str) -> dict[str, str]:
    return json.loads((CATALOGUES / f"{lang}.json").read_text(encoding="utf-8"))


def languages() -> list[str]:
    return sorted(p.stem for p in CATALOGUES.glob("*.json"))


def translate(lang: str, key: str, **values: object) -> str:
    text = catalogue(lang).get(key) or catalogue(DEFAULT).get(key) or key
    return text.format(**values) if values else text


def pick_language(query: str | None, cookie: str | None, accept: str | None) -> str:
    """The first supported language among the query parameter, the cookie and Accept-Language."""
    known = languages()
    for choice in (query, cookie):
        if choice in known:
            return choice
    for part in (accept or "").split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in known:
            return code
    return DEFAULT


def error_text(lang: str, code: str, message: str, values: dict | None = None) -> str:
    """A refusal in the reader's language: the catalogue's ``err_<code>``, else the rule's own message."""
    key = "err_" + code
    text = catalogue(lang).get(key) or catalogue(DEFAULT).get(key)
    if not text:
        return message
    try:
        return text.format(**(values or {}))
    except (KeyError, IndexError):  # a text that needs values this refusal did not carry
        return message
