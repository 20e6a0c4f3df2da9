"""Stage 3: from consensus statements (or legal texts) to Constitutional-AI principles, with provenance.

``Constitution`` / ``Principle`` (model.py) are the contract with training and evaluation:
``Constitution.load(path)``, ``.principles``, ``.content_hash``. The builders (``build_constitution``,
``compare``, ``merge_constitutions``, ``from_text``, ``standard_constitution``) are imported on first use, so
loading a constitution does not pull in pandas or the embedding model.
"""

from importlib import import_module
from typing import Any

from ccai.constitution.model import (
    TAGS,
    ArticleSource,
    BaseSource,
    Constitution,
    ConstitutionError,
    Principle,
    StatementSource,
    from_cai_paper,
)

_LAZY = {
    "build_constitution": "ccai.constitution.build",
    "BuildResult": "ccai.constitution.build",
    "read_statements": "ccai.constitution.select",
    "select_statements": "ccai.constitution.select",
    "compare": "ccai.constitution.compare",
    "merge_constitutions": "ccai.constitution.merge",
    "from_text": "ccai.constitution.national",
    "standard_constitution": "ccai.constitution.standard",
    "rewrite_statement": "ccai.constitution.rewrite",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ccai.constitution' has no attribute {name!r}")


__all__ = [
    "TAGS",
    "ArticleSource",
    "BaseSource",
    "Constitution",
    "ConstitutionError",
    "Principle",
    "StatementSource",
    "from_cai_paper",
    *_LAZY,
]
