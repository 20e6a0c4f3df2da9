"""The entry point uvicorn imports in each worker (``ccai serve``): settings from the environment."""

from __future__ import annotations

import os

from fastapi import FastAPI

from ccai.consultation.web.app import WebSettings, create_app


def app_from_env() -> FastAPI:
    """The app for DATABASE_URL / CCAI_SECRET_KEY / CCAI_HOME; CCAI_NEAR_DUPLICATES=0 skips MiniLM,
    CCAI_SECURE_COOKIES=1 marks cookies Secure (served over HTTPS; needed for embeds), CCAI_LIMITS sets or
    turns ``off`` the abuse limits (``limits.py``), CCAI_ROUTING_CACHE=0 recounts votes per next statement,
    CCAI_FAST_NEXT=0 sends next-statement API requests through FastAPI (web/fastnext.py),
    CCAI_PUBLIC_URL is the address embed snippets use."""
    return create_app(
        WebSettings.from_env(
            near_duplicates=os.environ.get("CCAI_NEAR_DUPLICATES", "1") == "1",
            secure_cookies=os.environ.get("CCAI_SECURE_COOKIES", "0") == "1",
            routing_cache=os.environ.get("CCAI_ROUTING_CACHE", "1") == "1",
            fast_next=os.environ.get("CCAI_FAST_NEXT", "1") == "1",
            public_url=os.environ.get("CCAI_PUBLIC_URL", "").rstrip("/"),
        )
    )
