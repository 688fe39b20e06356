"""What every layer's one-line error messages share."""
from __future__ import annotations


def one_line(err: BaseException) -> str:
    """`err`'s message on one line (runs of whitespace, newlines included, become one space); its
    type name when the message is empty."""
    return " ".join(str(err).split()) or type(err).__name__
