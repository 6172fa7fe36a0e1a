"""Text cleaning steps: each takes a text and returns it cleaned, or raises :class:`Rejected`.

They are listed by name under ``data.text_cleaning`` and applied in that order, so a user
removes one with ``~data.text_cleaning.<name>`` or adds their own with ``+data.text_cleaning``.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Literal

from rolefusion.choices import require_choice
from rolefusion.data.rejections import Rejected

UnicodeForm = Literal["NFC", "NFKC", "NFD", "NFKD"]
LengthAction = Literal["truncate", "drop"]
_WHITESPACE = re.compile(r"\s+")


class NormalizeUnicode:
    """Unicode normalization. NFKC (the default) folds look-alikes a tokenizer would otherwise
    split apart: full-width letters, ligatures, non-breaking spaces, superscripts."""

    def __init__(self, form: UnicodeForm = "NFKC") -> None:
        require_choice("NormalizeUnicode: form", form, UnicodeForm)
        self.form = form

    def __call__(self, text: str) -> str:
        return unicodedata.normalize(self.form, text)


class StripControlCharacters:
    """Drop control and format characters (category C: NUL, escape codes, zero-width marks);
    tabs and newlines become spaces, since they separate words."""

    def __call__(self, text: str) -> str:
        return "".join(
            " " if c in "\t\n\r" else c for c in text if c in "\t\n\r" or not _is_control(c)
        )


def _is_control(character: str) -> bool:
    return unicodedata.category(character).startswith("C")


class CollapseWhitespace:
    """Runs of whitespace -> one space, and none at either end."""

    def __call__(self, text: str) -> str:
        return _WHITESPACE.sub(" ", text).strip()


class LimitLength:
    """Texts over ``max_chars`` characters are truncated or dropped (``action``).

    Truncating at a word boundary keeps the tokenizer from seeing half a word.
    """

    def __init__(self, max_chars: int = 2000, action: LengthAction = "truncate") -> None:
        if max_chars < 1:
            raise ValueError(f"LimitLength: max_chars must be positive, got {max_chars}")
        require_choice("LimitLength: action", action, LengthAction)
        self.max_chars, self.action = max_chars, action

    def __call__(self, text: str) -> str:
        if len(text) <= self.max_chars:
            return text
        if self.action == "drop":
            raise Rejected("text too long", "text", f"{len(text)} > {self.max_chars} characters")
        cut = text[: self.max_chars]
        space = cut.rfind(" ")
        return cut[:space] if space > self.max_chars // 2 else cut


class RejectEmpty:
    """An empty text (after the steps before it) drops the example: the model would learn
    from a text modality that says nothing. Remove this step to keep such examples."""

    def __call__(self, text: str) -> str:
        if not text.strip():
            raise Rejected("empty text", "text")
        return text
