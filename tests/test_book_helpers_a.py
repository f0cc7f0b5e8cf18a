"""Tests of the helpers behind chapters 1 and 2 (the generated corpus, the tiny models, the glue helpers). About 5 s
on two cores; every test names the behaviour the book relies on. The chapters' sources are checked statically in
``test_book_glue.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from autograder.book import corpus, notebook
from autograder.book.corpus import TOPICS, Vocabulary, generate_corpus, skipgram_pairs, topic_of
from autograder.book.tiny_models import one_thread, train_skipgram
from autograder.reference import numpy_ref


# ----------------------------------------------------------------------------------------------- corpus
def test_corpus_is_deterministic_per_seed():
    assert generate_corpus(50, seed=3) == generate_corpus(50, seed=3)
    assert generate_corpus(50, seed=3) != generate_corpus(50, seed=4)


def test_each_sentence_draws_its_content_words_from_one_topic():
    sentences = generate_corpus(400, seed=0)
    topics_used = set()
    for sentence in sentences:
        topics = {topic_of(w) for w in sentence} - {"function"}
        assert len(topics) == 1, sentence
        topics_used |= topics
    assert topics_used == set(TOPICS)


def test_every_word_belongs_to_exactly_one_topic_and_part_of_speech():
    words = [w for parts in TOPICS.values() for ws in parts.values() for w in ws]
    assert len(words) == len(set(words))
    assert not set(words) & set(corpus.FUNCTION_WORDS)
    with pytest.raises(KeyError, match="not a word"):
        topic_of("zebra")


def test_vocabulary_encodes_in_first_seen_order_and_names_unknown_words():
    vocab = Vocabulary.from_sentences([["the", "cat"], ["the", "dog"]])
    assert vocab.words == ("the", "cat", "dog") and len(vocab) == 3
    np.testing.assert_array_equal(vocab.encode(["dog", "the"]), np.array([2, 0]))
    assert vocab.encode(["cat"]).dtype == np.int64
    with pytest.raises(KeyError, match="'fox' is not in the vocabulary"):
        vocab.encode(["fox"])


def test_skipgram_pairs_cover_the_window_and_nothing_else():
    sentence = ["a", "b", "c", "d"]
    vocab = Vocabulary.from_sentences([sentence])
    centers, contexts = skipgram_pairs([sentence], vocab, window=2)
    pairs = {(vocab.words[c], vocab.words[x]) for c, x in zip(centers, contexts, strict=False)}
    assert len(centers) == 10 and len(pairs) == 10  # 2 + 3 + 3 + 2 neighbours within two words
    assert ("a", "c") in pairs and ("a", "d") not in pairs and ("b", "b") not in pairs
    with pytest.raises(ValueError, match="window"):
        skipgram_pairs([sentence], vocab, window=0)


def test_generate_corpus_rejects_negative_sizes():
    with pytest.raises(ValueError, match="n_sentences"):
        generate_corpus(-1)


# ----------------------------------------------------------------------------------------------- skip-gram
@pytest.fixture(scope="module")
def small_corpus():
    sentences = generate_corpus(1000, seed=0)
    vocab = Vocabulary.from_sentences(sentences)
    return vocab, *skipgram_pairs(sentences, vocab)


def test_skipgram_training_is_deterministic_and_groups_topics(small_corpus):
    vocab, centers, contexts = small_corpus
    table, losses = train_skipgram(centers, contexts, len(vocab), dim=16, epochs=3, seed=0)
    again, _ = train_skipgram(centers, contexts, len(vocab), dim=16, epochs=3, seed=0)
    np.testing.assert_array_equal(table, again)
    assert table.shape == (len(vocab), 16) and table.dtype == np.float32
    assert losses[-1] < losses[0] < np.log(len(vocab))
    nouns = [w for parts in TOPICS.values() for w in parts["noun"]]
    share = np.mean(
        [
            topic_of(vocab.words[n]) == topic_of(w)
            for w in nouns
            for n in numpy_ref.nearest_neighbors(table, vocab.index[w], 5)
        ]
    )
    assert share > 0.9, share


def test_untrained_table_is_the_seeded_initialisation(small_corpus):
    vocab, centers, contexts = small_corpus
    table, losses = train_skipgram(centers, contexts, len(vocab), epochs=0, seed=0, init_std=0.02)
    assert losses == [] and 0.01 < table.std() < 0.03


def test_skipgram_rejects_mismatched_pairs():
    with pytest.raises(ValueError, match="one length"):
        train_skipgram(np.zeros(3, np.int64), np.zeros(4, np.int64), 5)


def test_one_thread_restores_the_thread_count_even_after_an_error():
    before = torch.get_num_threads()
    with pytest.raises(RuntimeError):
        with one_thread():
            assert torch.get_num_threads() == 1
            raise RuntimeError("boom")
    assert torch.get_num_threads() == before


# ----------------------------------------------------------------------------------------------- glue helpers
def test_glue_number_stores_plain_python_numbers(monkeypatch):
    import myst_nb

    stored = {}
    monkeypatch.setattr(myst_nb, "glue", lambda name, value, display=True: stored.update({name: (value, display)}))
    notebook.glue_number("a", np.float32(0.25))
    notebook.glue_number("b", np.int64(7))
    notebook.glue_text("c", "CPU x86_64")
    assert stored == {"a": (0.25, False), "b": (7, False), "c": ("CPU x86_64", False)}
    assert type(stored["a"][0]) is float and type(stored["b"][0]) is int
    with pytest.raises(TypeError, match="real number"):
        notebook.glue_number("d", "3")
    with pytest.raises(TypeError, match="real number"):
        notebook.glue_number("e", True)


def test_glue_markdown_stores_markdown_and_book_style_applies(monkeypatch):
    import matplotlib.pyplot as plt
    import myst_nb
    from IPython.display import Markdown

    stored = {}
    monkeypatch.setattr(myst_nb, "glue", lambda name, value, display=True: stored.update({name: (value, display)}))
    notebook.glue_markdown("op", "`F.embedding`")
    value, display = stored["op"]
    assert isinstance(value, Markdown) and value.data == "`F.embedding`" and display is False

    with plt.rc_context():
        plt.rcParams["axes.spines.top"] = True
        notebook.use_book_style()
        assert all(plt.rcParams[key] == want for key, want in notebook.BOOK_STYLE.items())
