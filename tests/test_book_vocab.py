"""The vocabulary-size table chapter 1 reads (``autograder/book/vocab.py``, ``data/vocab_tokens.csv``)."""

from __future__ import annotations

import pytest

from autograder import models
from autograder.book.vocab import load_vocab_tokens


def test_every_row_agrees_with_the_model_table_and_cites_its_source():
    rows = load_vocab_tokens()
    assert rows and len({r.model for r in rows}) == len(rows)
    for row in rows:
        assert row.config_vocab_size == models.get_model(row.model).vocab_size, row.model
        assert f"{row.config_vocab_size}" in row.source and row.source.strip()
    assert {r.model: r.padding_rows for r in rows}["Qwen2.5 7B"] == 152064 - 151665


def test_a_tokenizer_larger_than_its_table_is_refused(tmp_path):
    path = tmp_path / "v.csv"
    path.write_text("model,config_vocab_size,tokenizer_size,special_tokens,source\nX,10,11,0,s\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 2"):
        load_vocab_tokens(path)
