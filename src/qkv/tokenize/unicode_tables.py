"""Character classes that must agree with Hugging Face `tokenizers` code point by code point.

HF's BERT normaliser and pre-tokeniser classify characters with the Rust crate
`unicode_categories`, whose tables date from Unicode 8-10, while Python's `unicodedata` follows a
newer Unicode. To agree with HF on *every* code point we take Python's categories and correct
them with the lists below: characters Unicode classified after HF's tables were frozen
(measured against tokenizers 0.23 over all 1,114,112 code points; valid up to Unicode 17).

Measured residue (Python 3.11): with lowercasing, 55 letters newer than Python's Unicode 14
whose case Python does not know, and U+11938, which HF's NFD leaves composed.
The regex-based pre-tokenisers (`Whitespace`, `ByteLevel`) use the `regex` module, whose tables
agree with HF's Oniguruma on every character assigned up to Unicode 16 (they differ on the
~17,500 letters new in Unicode 17, which `regex` knows and HF does not yet).
"""

from __future__ import annotations

import unicodedata
from typing import Callable

# Unicode's White_Space property: what Rust's `char::is_whitespace` and Oniguruma's `\s` accept.
# (Python's `str.isspace` also accepts U+001C..U+001F, so we cannot use it.)
WHITE_SPACE = frozenset(
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
    "\u200a\u2028\u2029\u202f\u205f\u3000"
)

ASCII_PUNCTUATION = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")


def _ranges(*pairs: tuple[int, int]) -> frozenset[str]:
    return frozenset(chr(c) for lo, hi in pairs for c in range(lo, hi + 1))


# Punctuation (General Category P*) added after HF's tables: HF treats these as ordinary letters.
NEWER_PUNCTUATION = _ranges(
    (0x061D, 0x061D), (0x09FD, 0x09FD), (0x0A76, 0x0A76), (0x0C77, 0x0C77), (0x0C84, 0x0C84),
    (0x1B4E, 0x1B4F), (0x1B7D, 0x1B7F), (0x2E43, 0x2E4F), (0x2E52, 0x2E5D), (0x2E60, 0x2E63),
    (0x10D6E, 0x10D6E), (0x10EAD, 0x10EAD), (0x10ED0, 0x10ED0), (0x10F55, 0x10F59),
    (0x10F86, 0x10F89), (0x113D4, 0x113D5), (0x113D7, 0x113D8), (0x1144B, 0x1144F),
    (0x1145A, 0x1145B), (0x1145D, 0x1145D), (0x11660, 0x1166C), (0x116B9, 0x116B9),
    (0x1183B, 0x1183B), (0x11944, 0x11946), (0x119E2, 0x119E2), (0x11A3F, 0x11A46),
    (0x11A9A, 0x11A9C), (0x11A9E, 0x11AA2), (0x11B00, 0x11B09), (0x11BE1, 0x11BE1),
    (0x11C41, 0x11C45), (0x11C70, 0x11C71), (0x11EF7, 0x11EF8), (0x11F43, 0x11F4F),
    (0x11FFF, 0x11FFF), (0x12FF1, 0x12FF2), (0x16D6D, 0x16D6F), (0x16E97, 0x16E9A),
    (0x16FE2, 0x16FE2), (0x1E5FF, 0x1E5FF), (0x1E95E, 0x1E95F),
)
# Punctuation in HF's old tables that Unicode has since re-classified (now So and Mn).
OLDER_PUNCTUATION = frozenset("\u166d\U000111c9")

# Format characters (Cf) added after HF's tables: HF's `clean_text` keeps them.
NEWER_FORMAT = _ranges((0x0890, 0x0891), (0x08E2, 0x08E2), (0x110CD, 0x110CD), (0x13430, 0x1343F))

# Non-spacing marks (Mn) added after HF's tables: HF's `strip_accents` keeps them.
NEWER_NONSPACING_MARKS = _ranges(
    (0x05C8, 0x05C9), (0x07FD, 0x07FD), (0x0897, 0x089F), (0x08CA, 0x08E1),
    (0x09FE, 0x09FE), (0x0AFA, 0x0AFF), (0x0B53, 0x0B55), (0x0C04, 0x0C04),
    (0x0C3C, 0x0C3C), (0x0D00, 0x0D00), (0x0D3B, 0x0D3C), (0x0D81, 0x0D81),
    (0x0EBA, 0x0EBA), (0x0ECE, 0x0ECE), (0x180F, 0x180F), (0x1885, 0x1886),
    (0x1ABF, 0x1AF0), (0x1DF6, 0x1DFB), (0xA82C, 0xA82C), (0xA8C5, 0xA8C5),
    (0xA8FF, 0xA8FF), (0xA9BD, 0xA9BD), (0x10D24, 0x10D27), (0x10D69, 0x10D6D),
    (0x10EAB, 0x10EAC), (0x10ECB, 0x10ECF), (0x10EF0, 0x10EFF), (0x10F46, 0x10F50),
    (0x10F82, 0x10F85), (0x11070, 0x11070), (0x11073, 0x11074), (0x110C2, 0x110C2),
    (0x111C9, 0x111C9), (0x111CF, 0x111CF), (0x1123E, 0x1123E), (0x11241, 0x11241),
    (0x1133B, 0x1133B), (0x113BB, 0x113C0), (0x113CE, 0x113CE), (0x113D0, 0x113D0),
    (0x113D2, 0x113D2), (0x113E1, 0x113E2), (0x11438, 0x1143F), (0x11442, 0x11444),
    (0x11446, 0x11446), (0x1145E, 0x1145E), (0x1182F, 0x11837), (0x11839, 0x1183A),
    (0x1193B, 0x1193C), (0x1193E, 0x1193E), (0x11943, 0x11943), (0x119D4, 0x119D7),
    (0x119DA, 0x119DB), (0x119E0, 0x119E0), (0x11A01, 0x11A0A), (0x11A33, 0x11A38),
    (0x11A3B, 0x11A3E), (0x11A47, 0x11A47), (0x11A51, 0x11A56), (0x11A59, 0x11A5B),
    (0x11A8A, 0x11A96), (0x11A98, 0x11A99), (0x11B60, 0x11B60), (0x11B62, 0x11B64),
    (0x11B66, 0x11B66), (0x11C30, 0x11C36), (0x11C38, 0x11C3D), (0x11C3F, 0x11C3F),
    (0x11C92, 0x11CA7), (0x11CAA, 0x11CB0), (0x11CB2, 0x11CB3), (0x11CB5, 0x11CB6),
    (0x11D31, 0x11D36), (0x11D3A, 0x11D3A), (0x11D3C, 0x11D3D), (0x11D3F, 0x11D45),
    (0x11D47, 0x11D47), (0x11D90, 0x11D91), (0x11D95, 0x11D95), (0x11D97, 0x11D97),
    (0x11DF0, 0x11DF0), (0x11EF3, 0x11EF4), (0x11F00, 0x11F01), (0x11F36, 0x11F3A),
    (0x11F40, 0x11F40), (0x11F42, 0x11F42), (0x11F5A, 0x11F5A), (0x13440, 0x13440),
    (0x13447, 0x13455), (0x1611E, 0x16129), (0x1612D, 0x1612F), (0x16F4F, 0x16F4F),
    (0x16FE4, 0x16FE4), (0x1CF00, 0x1CF2D), (0x1CF30, 0x1CF46), (0x1D127, 0x1D128),
    (0x1D25B, 0x1D25C), (0x1E000, 0x1E006), (0x1E008, 0x1E018), (0x1E01B, 0x1E021),
    (0x1E023, 0x1E024), (0x1E026, 0x1E02A), (0x1E08F, 0x1E08F), (0x1E130, 0x1E136),
    (0x1E2AE, 0x1E2AE), (0x1E2EC, 0x1E2EF), (0x1E4EC, 0x1E4EF), (0x1E5EE, 0x1E5EF),
    (0x1E6E3, 0x1E6E3), (0x1E6E6, 0x1E6E6), (0x1E6EE, 0x1E6EF), (0x1E6F5, 0x1E6F5),
    (0x1E944, 0x1E94A),
)
# A non-spacing mark in HF's old tables that Unicode has since made a spacing mark (Mc).
OLDER_NONSPACING_MARKS = frozenset("\u1734")

# The CJK blocks BERT surrounds with spaces (Devlin et al. 2019, `_is_chinese_char`).
CJK_RANGES = (
    (0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F), (0x2B920, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F),
)


def is_bert_punctuation(c: str) -> bool:
    """BERT's punctuation: ASCII punctuation (including symbols like `$`, `+`) or category P*."""
    if c in ASCII_PUNCTUATION or c in OLDER_PUNCTUATION:
        return True
    return unicodedata.category(c).startswith("P") and c not in NEWER_PUNCTUATION


def is_bert_control(c: str) -> bool:
    """Characters BERT's `clean_text` deletes: NUL, U+FFFD and control/format/private-use ones."""
    if c in "\t\n\r":  # technically control characters, but BERT maps them to a space instead
        return False
    if c in "\x00\ufffd":
        return True
    return unicodedata.category(c) in ("Cc", "Cf", "Co") and c not in NEWER_FORMAT


def is_bert_accent(c: str) -> bool:
    """What BERT's `strip_accents` removes after NFD: non-spacing marks (category Mn)."""
    if c in OLDER_NONSPACING_MARKS:
        return True
    return unicodedata.category(c) == "Mn" and c not in NEWER_NONSPACING_MARKS


def is_cjk(c: str) -> bool:
    """Is `c` in one of the CJK ideograph blocks that BERT splits into single characters?"""
    cp = ord(c)
    return any(lo <= cp <= hi for lo, hi in CJK_RANGES)


class CharMap(dict):
    """A `str.translate` table filled on demand: each character's replacement is computed once.

    `text.translate(CharMap(f))` equals `"".join(f(c) for c in text)` but runs the loop in C,
    which makes the per-character BERT rules about as fast as a regex.
    """

    def __init__(self, fn: Callable[[str], str]) -> None:
        super().__init__()
        self.fn = fn

    def __missing__(self, codepoint: int) -> str:
        replacement = self[codepoint] = self.fn(chr(codepoint))
        return replacement
