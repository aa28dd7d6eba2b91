"""Unified social credit code (统一社会信用代码) validation per GB 32100-2015."""

from __future__ import annotations

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # 31 symbols: no I, O, S, V, Z
WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
# Registration authority 5 = civil affairs (民政); these are the organisation kinds it registers.
CIVIL_AFFAIRS_KINDS = {"1": "social_group", "2": "social_service_agency", "3": "foundation"}


def check_character(first17: str) -> str:
    """The 18th character for the first 17."""
    total = sum(ALPHABET.index(ch) * w for ch, w in zip(first17, WEIGHTS, strict=True))
    return ALPHABET[(31 - total % 31) % 31]


def problem(code: str) -> str | None:
    """Why a code is not a valid USCC, or None when it is."""
    if len(code) != 18:
        return "length"
    if any(ch not in ALPHABET for ch in code):
        return "alphabet"
    if check_character(code[:17]) != code[17]:
        return "check_digit"
    return None


def make(first17: str) -> str:
    """A full code from its first 17 characters (demo data and tests)."""
    return first17 + check_character(first17)
