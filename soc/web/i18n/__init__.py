"""The console's texts in Vietnamese and English: one YAML catalogue per language, the same keys in each."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path

import yaml

_DIR = Path(__file__).resolve().parent


@cache
def catalogue(language: str) -> dict[str, str]:
    data = yaml.safe_load((_DIR / f"{language}.yaml").read_text(encoding="utf-8"))
    return {str(k): str(v) for k, v in data.items()}


def translator(language: str) -> Callable[[str], str]:
    """``t(key)``: the text in ``language``, else in English, else the key itself (so a gap shows, not breaks)."""
    texts, fallback = catalogue(language if language in ("vi", "en") else "en"), catalogue("en")
    return lambda key: texts.get(key) or fallback.get(key) or key
