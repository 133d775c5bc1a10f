"""Small English helpers for messages: counts with the right plural, and 'a' or 'an'."""

from __future__ import annotations


def plural(n: int, word: str, many: str | None = None) -> str:
    """'1 epoch', '3 epochs' (``many`` for irregular plurals: plural(2, 'class', 'classes'))."""
    return f"{n:,} {word if n == 1 else many or word + 's'}"


def article(word: str) -> str:
    """'a cnn', 'an mlp', 'an int': by the sound of the first letter (a letter name for an
    acronym-like model name, which is how they are read)."""
    lowered = word.lower()
    if not lowered:
        return "a"
    # letters whose name starts with a vowel sound: f (ef), h (aitch), l, m, n, r, s, x
    acronym = len(word) <= 4 and lowered.isalpha() and not any(c in "aeiou" for c in lowered)
    vowel = lowered[0] in "aeiou" or (acronym and lowered[0] in "fhlmnrsx")
    return f"{'an' if vowel else 'a'} {word}"
