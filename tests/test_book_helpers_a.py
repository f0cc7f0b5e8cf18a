"""Tests of the helpers behind chapters 1 and 2 (the generated corpus, the tiny models, the glue helpers). About 5 s
on two cores; every test names the behaviour the book relies on. The chapters' sources are checked statically in
``test_book_glue.py``.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from autograder.book import corpus, notebook, tiny_models
from autograder.book.corpus import TOPICS, Vocabulary, generate_corpus, skipgram_pairs, topic_of
from autograder.book.tiny_models import (POSITION_KINDS, TinyAttention, accuracy_by_position, offset_copy_batch,
                                         one_thread, rope_rotate, train_offset_copy, train_skipgram)
from autograder.reference import numpy_ref, torch_ref


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
    pairs = {(vocab.words[c], vocab.words[x]) for c, x in zip(centers, contexts)}
    assert len(centers) == 10 and len(pairs) == 10          # 2 + 3 + 3 + 2 neighbours within two words
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
    share = np.mean([topic_of(vocab.words[n]) == topic_of(w)
                     for w in nouns for n in numpy_ref.nearest_neighbors(table, vocab.index[w], 5)])
    assert share > 0.9, share


def test_untrained_table_is_the_seeded_initialisation(small_corpus):
    vocab, centers, contexts = small_corpus
    table, losses = train_skipgram(centers, contexts, len(vocab), epochs=0, seed=0, init_std=0.02)
    assert losses == [] and 0.01 < table.std() < 0.03


def test_skipgram_rejects_mismatched_pairs():
    with pytest.raises(ValueError, match="one length"):
        train_skipgram(np.zeros(3, np.int64), np.zeros(4, np.int64), 5)


# ----------------------------------------------------------------------------------------------- RoPE
@pytest.mark.parametrize("shape", [(5, 8), (2, 3, 7, 16), (1, 64)])
def test_rope_rotate_matches_the_torch_reference(shape):
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    positions = torch.arange(shape[-2]) * 37 + 5
    expected = torch_ref.apply_rope(x.double(), positions).float()
    torch.testing.assert_close(rope_rotate(x, positions), expected, atol=1e-4, rtol=1e-4)
    assert rope_rotate(x, positions).dtype == x.dtype


def test_rope_rotate_scores_depend_only_on_the_offset():
    q, k = torch.randn(2, 32, generator=torch.Generator().manual_seed(1)).unbind(0)
    pos = torch.arange(40)
    scores = rope_rotate(q.expand(40, 32), pos) @ rope_rotate(k.expand(40, 32), pos).T
    for offset in (-7, 0, 11):
        diag = torch.diagonal(scores, offset)
        assert float(diag.max() - diag.min()) < 1e-4


def test_rope_rotate_rejects_bad_shapes():
    with pytest.raises(ValueError, match="even"):
        rope_rotate(torch.zeros(4, 5), torch.arange(4))
    with pytest.raises(ValueError, match="positions"):
        rope_rotate(torch.zeros(4, 6), torch.arange(3))


# ----------------------------------------------------------------------------------------------- tiny attention
def test_same_seed_same_model_and_global_rng_untouched():
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    a, b = TinyAttention(10, 8, 16, "learned", seed=4), TinyAttention(10, 8, 16, "learned", seed=4)
    assert torch.equal(torch.rand(1), expected_next)
    for pa, pb in zip(a.state_dict().values(), b.state_dict().values()):
        assert torch.equal(pa, pb)
    c = TinyAttention(10, 8, 16, "learned", seed=5)
    assert not torch.equal(a.query.weight, c.query.weight)


@pytest.mark.parametrize("kind", POSITION_KINDS)
def test_attention_is_causal_and_shapes_are_right(kind):
    model = TinyAttention(12, 8, 16, kind, seed=0)
    ids = torch.randint(12, (3, 10), generator=torch.Generator().manual_seed(0))
    changed = ids.clone()
    changed[:, 6:] = (changed[:, 6:] + 1) % 12              # change only the future of position 5
    out, out_changed = model(ids), model(changed)
    assert out.shape == (3, 10, 12)
    torch.testing.assert_close(out[:, :6], out_changed[:, :6])
    assert not torch.allclose(out[:, 6:], out_changed[:, 6:])


def test_absolute_tables_have_a_hard_length_limit_and_bad_kinds_are_refused():
    with pytest.raises(ValueError, match="exceeds max_len"):
        TinyAttention(10, 8, 16, "learned")(torch.zeros(1, 17, dtype=torch.long))
    TinyAttention(10, 8, 16, "rotary")(torch.zeros(1, 40, dtype=torch.long))   # no table, no limit
    with pytest.raises(ValueError, match="positions must be one of"):
        TinyAttention(10, 8, 16, "alibi")


def test_offset_copy_targets_are_the_ids_offset_back():
    ids, targets = offset_copy_batch(4, 9, 7, 3, torch.Generator().manual_seed(0))
    assert (targets[:, :3] == -100).all()
    assert torch.equal(targets[:, 3:], ids[:, :-3])


def test_rotary_model_learns_the_offset_task_and_accuracy_marks_undefined_positions():
    model = TinyAttention(16, 32, 64, "rotary", seed=0)
    losses = train_offset_copy(model, length=32, offset=3, steps=200, seed=0)
    assert losses[-1] < 0.1 * losses[0]
    acc = accuracy_by_position(model, length=32, offset=3, batch=128)
    assert acc.shape == (32,) and np.isnan(acc[:3]).all()
    assert np.nanmean(acc) > 0.95


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
