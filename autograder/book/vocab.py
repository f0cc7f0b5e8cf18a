"""Vocabulary sizes as a model's configuration and its tokenizer state them (``data/vocab_tokens.csv``).

A configuration's ``vocab_size`` is the number of rows of the embedding table; the tokenizer may define fewer ids.
The difference, :attr:`VocabTokens.padding_rows`, is rows no token ever looks up: they keep their initial values on
the input side (chapter 1 measures what happens to them on the output side and under weight decay).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path

__all__ = ["VocabTokens", "VOCAB_TOKENS_CSV", "load_vocab_tokens"]

VOCAB_TOKENS_CSV = Path(__file__).resolve().parents[1] / "data" / "vocab_tokens.csv"


@dataclass(frozen=True)
class VocabTokens:
    """One model: table rows (``config_vocab_size``), ids its tokenizer defines (``tokenizer_size``), how many of
    those are special tokens, and the source of the three numbers."""

    model: str
    config_vocab_size: int
    tokenizer_size: int
    special_tokens: int
    source: str

    @property
    def padding_rows(self) -> int:
        """Rows of the table that no tokenizer id reaches: ``config_vocab_size - tokenizer_size``."""
        return self.config_vocab_size - self.tokenizer_size


@cache
def _load(path: str) -> tuple[VocabTokens, ...]:
    rows = []
    with open(path, newline="", encoding="utf-8") as f:
        for line, row in enumerate(csv.DictReader(f), start=2):
            try:
                entry = VocabTokens(
                    model=row["model"],
                    config_vocab_size=int(row["config_vocab_size"]),
                    tokenizer_size=int(row["tokenizer_size"]),
                    special_tokens=int(row["special_tokens"]),
                    source=row["source"],
                )
            except (KeyError, ValueError) as exc:
                raise ValueError(f"{Path(path).name} line {line}: bad or missing field ({exc})") from None
            if not 0 <= entry.special_tokens <= entry.tokenizer_size <= entry.config_vocab_size:
                raise ValueError(
                    f"{Path(path).name} line {line}: need 0 <= special_tokens <= tokenizer_size <= config_vocab_size"
                )
            rows.append(entry)
    return tuple(rows)


def load_vocab_tokens(path: str | Path | None = None) -> list[VocabTokens]:
    """Every row of ``data/vocab_tokens.csv`` (or ``path``), in file order; ``ValueError`` naming a bad line."""
    return list(_load(str(path or VOCAB_TOKENS_CSV)))
