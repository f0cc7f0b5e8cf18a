"""Tests of chapter 2's extrapolation study (``autograder.book.extrapolation``): the model's arms and controls, and
the committed result cache the chapter reads."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from autograder.book import extrapolation as ex
from autograder.book.extrapolation import PositionAttention, correct_by_position, offset_copy_batch, train_offset_copy


def test_same_seed_same_model_and_global_rng_untouched():
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    a, b = PositionAttention(10, 8, 16, "learned", seed=4), PositionAttention(10, 8, 16, "learned", seed=4)
    assert torch.equal(torch.rand(1), expected_next)
    for pa, pb in zip(a.state_dict().values(), b.state_dict().values(), strict=False):
        assert torch.equal(pa, pb)
    assert not torch.equal(a.query.weight, PositionAttention(10, 8, 16, "learned", seed=5).query.weight)
    assert abs(float(a.position.weight.detach().std()) - 0.02) < 0.005  # GPT-2's wpe initialisation


@pytest.mark.parametrize("kind", ex.TRAINED_KINDS)
def test_attention_is_causal_and_windowed_and_shapes_are_right(kind):
    model = PositionAttention(12, 8, 16, kind, seed=0)
    ids = torch.randint(12, (3, 10), generator=torch.Generator().manual_seed(0))
    changed = ids.clone()
    changed[:, 6:] = (changed[:, 6:] + 1) % 12  # change only the future of position 5
    out, out_changed = model(ids), model(changed)
    assert out.shape == (3, 10, 12)
    torch.testing.assert_close(out[:, :6], out_changed[:, :6])
    assert not torch.allclose(out[:, 6:], out_changed[:, 6:])
    weights, _ = model.attention_weights(ids, window=3)
    distance = torch.arange(10)[:, None] - torch.arange(10)[None, :]
    assert torch.all(weights[:, (distance < 0) | (distance >= 3)] == 0)
    torch.testing.assert_close(weights.sum(-1), torch.ones(3, 10))


@pytest.mark.parametrize("kind", ["nope", "rope", "alibi"])
def test_relative_arms_are_exactly_shift_invariant_and_absolute_ones_are_not(kind):
    ids = torch.randint(12, (2, 10), generator=torch.Generator().manual_seed(1))
    model = PositionAttention(12, 8, 64, kind, seed=0)
    torch.testing.assert_close(model(ids, start=40), model(ids), atol=1e-5, rtol=1e-5)
    absolute = PositionAttention(12, 8, 64, "sinusoidal", seed=0)
    assert not torch.allclose(absolute(ids, start=40), absolute(ids), atol=1e-3)


def test_position_interpolation_divides_the_rope_frequencies():
    model = PositionAttention(12, 8, 64, "rope", seed=0)
    ids = torch.randint(12, (2, 10), generator=torch.Generator().manual_seed(2))
    scaled = model.attention_weights(ids, pi_factor=4.0)[0]
    model.inv_freq /= 4
    torch.testing.assert_close(model.attention_weights(ids)[0], scaled)


def test_absolute_tables_have_a_hard_length_limit_and_bad_kinds_are_refused():
    with pytest.raises(ValueError, match="table of 17 rows"):
        PositionAttention(10, 8, 16, "learned")(torch.zeros(1, 17, dtype=torch.long))
    with pytest.raises(ValueError, match="table of 20 rows"):
        PositionAttention(10, 8, 16, "sinusoidal")(torch.zeros(1, 10, dtype=torch.long), start=10)
    PositionAttention(10, 8, 16, "rope")(torch.zeros(1, 40, dtype=torch.long))  # no table, no limit
    with pytest.raises(ValueError, match="positions must be one of"):
        PositionAttention(10, 8, 16, "rotary")


def test_offset_copy_targets_are_the_ids_offset_back():
    ids, targets = offset_copy_batch(4, 9, 7, 3, torch.Generator().manual_seed(0))
    assert (targets[:, :3] == -100).all()
    assert torch.equal(targets[:, 3:], ids[:, :-3])
    with pytest.raises(ValueError, match="offset"):
        offset_copy_batch(4, 3, 7, 3, torch.Generator())


def test_rope_model_learns_the_offset_task_and_counts_skip_undefined_positions():
    model = PositionAttention(16, 32, 64, "rope", seed=0)
    losses = train_offset_copy(model, length=32, offset=3, steps=200, seed=0)
    assert losses[-1] < 0.1 * losses[0]
    counts = correct_by_position(model, length=32, offset=3, batch=128)
    assert counts.shape == (32,) and (counts[:3] == 0).all()
    assert counts[3:].mean() > 0.95 * 128


def test_run_experiment_structure_and_summary():
    params = {"steps": 5, "seeds": [0, 1], "eval_batch": 8, "test_len": 48}
    results = ex.run_experiment(params, arms=("rope", "rope_pi"))
    assert set(results["correct"]) == {"rope", "rope_pi"} and set(results["final_loss"]) == {"rope", "rope_pi"}
    for arm in ("rope", "rope_pi"):
        assert [len(results["correct"][arm][c][0]) for c in ex.CONDITIONS] == [32, 32, 48, 48]
        assert len(results["correct"][arm]["long"]) == 2
    acc = ex.summary(results, "rope", "long", 32, 48)
    assert acc.shape == (2,) and np.all((acc >= 0) & (acc <= 1))
    json.dumps(results)  # the cache is plain JSON
    with pytest.raises(ValueError, match="unknown arms"):
        ex.run_experiment(params, arms=("t5",))


def test_the_committed_cache_is_current_and_complete():
    """A change to the experiment's code or parameters must come with regenerated results
    (``python -m autograder.book.extrapolation --write``); the chapter would otherwise rerun it at build time."""
    cached = json.loads(ex.RESULTS_JSON.read_text())
    assert cached["key"] == ex.cache_key(), "stale: run python -m autograder.book.extrapolation --write"
    results = cached["results"]
    p = results["params"]
    assert p == ex.DEFAULT_PARAMS
    for arm in ex.ARMS:
        for condition in ex.CONDITIONS:
            assert len(results["correct"][arm][condition]) == len(p["seeds"])
    _, from_cache = ex.load_or_run()
    assert from_cache


def test_a_cached_arm_is_reproduced_here():
    """One arm and seed, retrained here, gives the cached accuracy under every condition (within 2 points: the same
    code on another CPU may round differently)."""
    cached = json.loads(ex.RESULTS_JSON.read_text())["results"]
    p = dict(cached["params"], seeds=[0])
    fresh = ex.run_experiment(p, arms=("rope",))
    for condition in ex.CONDITIONS:
        stop = p["train_len"] if condition in ("trained", "shifted") else p["test_len"]
        assert (
            abs(
                ex.summary(fresh, "rope", condition, p["offset"], stop)[0]
                - ex.summary(cached, "rope", condition, p["offset"], stop)[0]
            )
            < 0.02
        ), condition
