"""Chapter 2's controlled extrapolation study: which position encodings work beyond the trained length, and why.

The task depends on relative position only: at every position ``t`` output the token ``offset`` places back
(:func:`offset_copy_batch`). One causal attention head (:class:`PositionAttention`) learns it on sequences of
``train_len`` tokens, once per arm and seed; the arms differ only in how positions enter:

``nope``        no positions (the causal mask alone);
``learned``     a trained position table added to the tokens, initialised ``N(0, 0.02**2)`` as Hugging Face's
                ``GPT2PreTrainedModel`` initialises ``wpe`` (``initializer_range`` 0.02);
``sinusoidal``  the fixed table of Vaswani et al. (2017) added to the tokens;
``rope``        queries and keys rotated (Su et al. 2021), ``theta`` 10000;
``rope_pi``     the *same trained* RoPE models evaluated with position interpolation (Chen et al. 2023): every
                frequency divided by ``test_len / train_len``, at every length, with no fine-tuning;
``alibi``       no rotation, a bias ``-slope * (t - s)`` added to the score of key ``s`` (Press et al. 2022).

Each model is evaluated under four conditions that separate unseen *positions* from unseen *offsets*:

``trained``     ``train_len`` tokens at positions ``0 ..``: what training saw;
``shifted``     ``train_len`` tokens at positions ``shift ..``: every position unseen, every offset seen;
``windowed``    ``test_len`` tokens, each query seeing only the last ``train_len`` keys: positions unseen, offsets seen;
``long``        ``test_len`` tokens, full causal attention: unseen positions *and* unseen offsets.

:func:`run_experiment` returns plain JSON-able results (correct counts per position, per seed). :func:`load_or_run`
reads them from the committed cache ``data/extrapolation_results.json`` when its key (a hash of this code, of the
helpers it calls and of the parameters) matches, and runs the experiment otherwise; ``python -m
autograder.book.extrapolation --write`` regenerates the cache, and ``tests/test_book_extrapolation.py`` fails when
the committed key is stale. Everything trains on one CPU thread with explicit seeds.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import inspect
import json
import math
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from autograder.book import rope_layouts
from autograder.book.tiny_models import one_thread
from autograder.reference import numpy_ref

__all__ = [
    "ARMS",
    "TRAINED_KINDS",
    "CONDITIONS",
    "DEFAULT_PARAMS",
    "RESULTS_JSON",
    "PositionAttention",
    "offset_copy_batch",
    "train_offset_copy",
    "correct_by_position",
    "run_experiment",
    "cache_key",
    "load_or_run",
    "summary",
]

RESULTS_JSON = Path(__file__).resolve().parents[1] / "data" / "extrapolation_results.json"
#: the model kinds that are trained; ``rope_pi`` is the ``rope`` models evaluated with interpolated positions
TRAINED_KINDS = ("nope", "learned", "sinusoidal", "rope", "alibi")
ARMS = ("nope", "learned", "sinusoidal", "rope", "rope_pi", "alibi")
CONDITIONS = ("trained", "shifted", "windowed", "long")
DEFAULT_PARAMS = {
    "vocab_size": 16,
    "dim": 32,
    "train_len": 32,
    "test_len": 128,
    "offset": 3,
    "steps": 300,
    "batch": 64,
    "lr": 0.01,
    "eval_batch": 256,
    "seeds": [0, 1, 2, 3, 4],
    "theta": 10000.0,
    "alibi_slope": 0.5,
    "learned_std": 0.02,
}


class PositionAttention(nn.Module):
    """One causal self-attention head over token vectors, then a linear read-out to the vocabulary.

    ``positions`` is one of :data:`TRAINED_KINDS`. The initial weights depend only on ``seed``; the global RNG is
    left untouched. ``forward(ids, start=0, window=None, pi_factor=1.0)``: ids ``(B, T)`` long at positions
    ``start .. start + T - 1`` -> logits ``(B, T, vocab_size)``. ``window`` limits each query to its last
    ``window`` keys (itself included); ``pi_factor`` divides RoPE's frequencies (position interpolation).
    ``ValueError`` when an absolute table (``learned``, ``sinusoidal``) has no row for a position, and for an
    unknown kind.
    """

    def __init__(
        self,
        vocab_size: int,
        dim: int,
        max_len: int,
        positions: str,
        seed: int = 0,
        *,
        theta: float = 10000.0,
        alibi_slope: float = 0.5,
        learned_std: float = 0.02,
    ):
        super().__init__()
        if positions not in TRAINED_KINDS:
            raise ValueError(f"positions must be one of {TRAINED_KINDS}, got {positions!r}")
        self.positions, self.max_len, self.alibi_slope = positions, max_len, alibi_slope
        self.rope_layout = "interleaved"
        self.register_buffer(
            "inv_freq",
            torch.tensor(theta, dtype=torch.float64).pow(-torch.arange(0, dim, 2, dtype=torch.float64) / dim).float(),
            persistent=False,
        )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.token = nn.Embedding(vocab_size, dim)
            if positions == "learned":
                self.position = nn.Embedding(max_len, dim)
                nn.init.normal_(self.position.weight, std=learned_std)
            elif positions == "sinusoidal":
                self.register_buffer("position_table", torch.from_numpy(numpy_ref.sinusoidal_positions(max_len, dim)))
            self.query, self.key, self.value = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
            self.readout = nn.Linear(dim, vocab_size)

    def attention_weights(
        self, ids: torch.Tensor, start: int = 0, window: int | None = None, pi_factor: float = 1.0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(weights (B, T, T), values (B, T, D))``: the causal (optionally windowed) softmax and its values."""
        length = ids.shape[-1]
        pos = torch.arange(start, start + length)
        x = self.token(ids)
        if self.positions in ("learned", "sinusoidal"):
            if start + length > self.max_len:
                raise ValueError(
                    f"positions up to {start + length - 1} need a table of {start + length} rows; "
                    f"this one has {self.max_len}"
                )
            x = x + (self.position(pos) if self.positions == "learned" else self.position_table[pos])
        q, k, v = self.query(x), self.key(x), self.value(x)
        if self.positions == "rope":
            freqs = self.inv_freq / pi_factor
            q = rope_layouts.rope_rotate(q, pos, inv_freq=freqs, layout=self.rope_layout)
            k = rope_layouts.rope_rotate(k, pos, inv_freq=freqs, layout=self.rope_layout)
        scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
        distance = pos[:, None] - pos[None, :]  # (T, T): query position minus key position
        if self.positions == "alibi":
            scores = scores - self.alibi_slope * distance.clamp(min=0)
        visible = distance >= 0
        if window is not None:
            visible &= distance < window
        return scores.masked_fill(~visible, float("-inf")).softmax(dim=-1), v

    def forward(
        self, ids: torch.Tensor, start: int = 0, window: int | None = None, pi_factor: float = 1.0
    ) -> torch.Tensor:
        weights, v = self.attention_weights(ids, start, window, pi_factor)
        return self.readout(weights @ v)


def offset_copy_batch(
    batch: int, length: int, vocab_size: int, offset: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random ids ``(B, T)`` and targets ``(B, T)``: the target at position ``t`` is the id at ``t - offset``.

    The first ``offset`` positions have no such id; their target is ``-100``, which ``F.cross_entropy`` ignores.
    ``ValueError`` unless ``0 < offset < length``.
    """
    if not 0 < offset < length:
        raise ValueError(f"need 0 < offset < length, got offset {offset} and length {length}")
    ids = torch.randint(vocab_size, (batch, length), generator=generator)
    targets = torch.full_like(ids, -100)
    targets[:, offset:] = ids[:, :-offset]
    return ids, targets


def train_offset_copy(
    model: PositionAttention,
    *,
    length: int,
    offset: int,
    steps: int = 300,
    batch: int = 64,
    lr: float = 0.01,
    seed: int = 0,
) -> list[float]:
    """Train ``model`` with Adam on :func:`offset_copy_batch` sequences of ``length`` tokens; returns the losses."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    vocab_size = model.readout.out_features
    losses = []
    with one_thread():
        for _ in range(steps):
            ids, targets = offset_copy_batch(batch, length, vocab_size, offset, gen)
            loss = F.cross_entropy(model(ids).flatten(0, 1), targets.flatten())
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
    return losses


@torch.no_grad()
def correct_by_position(
    model: PositionAttention,
    *,
    length: int,
    offset: int,
    batch: int = 256,
    seed: int = 1,
    start: int = 0,
    window: int | None = None,
    pi_factor: float = 1.0,
) -> np.ndarray:
    """int64 ``(length,)``: how many of ``batch`` fresh sequences the model gets right at each position
    (0 for the first ``offset`` positions, which have no target)."""
    gen = torch.Generator().manual_seed(seed)
    ids, targets = offset_copy_batch(batch, length, model.readout.out_features, offset, gen)
    with one_thread():
        predictions = model(ids, start=start, window=window, pi_factor=pi_factor).argmax(-1)
    return (predictions == targets).sum(0).numpy().astype(np.int64)


def _conditions(p: dict) -> dict[str, dict]:
    """The keyword arguments of :func:`correct_by_position` for each condition."""
    shift = p["test_len"] - p["train_len"]  # the shifted positions end where the long test does
    return {
        "trained": {"length": p["train_len"]},
        "shifted": {"length": p["train_len"], "start": shift},
        "windowed": {"length": p["test_len"], "window": p["train_len"]},
        "long": {"length": p["test_len"]},
    }


def run_experiment(params: dict | None = None, *, arms: tuple[str, ...] = ARMS, log=None) -> dict:
    """Train every trained kind for every seed and evaluate every arm under every condition.

    Returns ``{"params", "seconds", "final_loss": {arm: [per seed]}, "correct": {arm: {condition: [per seed:
    counts per position]}}}``, JSON-able; ``seconds`` is the wall time of the whole run on this machine.
    """
    p = dict(DEFAULT_PARAMS, **(params or {}))
    unknown = set(arms) - set(ARMS)
    if unknown:
        raise ValueError(f"unknown arms {sorted(unknown)}; choose from {ARMS}")
    t0 = time.perf_counter()
    kinds = {("rope" if arm == "rope_pi" else arm) for arm in arms}
    out = {"params": p, "final_loss": {}, "correct": {arm: {c: [] for c in CONDITIONS} for arm in arms}}
    pi_factor = p["test_len"] / p["train_len"]
    for kind in [k for k in TRAINED_KINDS if k in kinds]:
        for seed in p["seeds"]:
            model = PositionAttention(
                p["vocab_size"],
                p["dim"],
                max_len=p["test_len"],
                positions=kind,
                seed=seed,
                theta=p["theta"],
                alibi_slope=p["alibi_slope"],
                learned_std=p["learned_std"],
            )
            losses = train_offset_copy(
                model,
                length=p["train_len"],
                offset=p["offset"],
                steps=p["steps"],
                batch=p["batch"],
                lr=p["lr"],
                seed=seed,
            )
            for arm in [a for a in arms if a == kind or (kind == "rope" and a == "rope_pi")]:
                out["final_loss"].setdefault(arm, []).append(losses[-1])
                for condition, kwargs in _conditions(p).items():
                    counts = correct_by_position(
                        model,
                        offset=p["offset"],
                        batch=p["eval_batch"],
                        seed=1000 + seed,
                        pi_factor=pi_factor if arm == "rope_pi" else 1.0,
                        **kwargs,
                    )
                    out["correct"][arm][condition].append(counts.tolist())
            if log:
                log(f"{kind} seed {seed}: final loss {losses[-1]:.4f} ({time.perf_counter() - t0:.1f} s so far)")
    out["seconds"] = time.perf_counter() - t0
    return out


def _sources() -> str:
    """The code the results depend on: this module, the RoPE rotation, the sinusoidal table and the thread helper,
    as syntax trees without docstrings, so that comments, docstrings and formatting do not make the cache stale."""
    objects = [
        sys.modules[__name__],
        rope_layouts.rope_rotate,
        rope_layouts.rotate_half,
        numpy_ref.sinusoidal_positions,
        one_thread,
    ]
    return "\n".join(_code_tree(inspect.getsource(obj)) for obj in objects)


def _code_tree(source: str) -> str:
    """``ast.dump`` of ``source`` without docstrings: what the code does, not how it is written or explained."""
    tree = ast.parse(textwrap.dedent(source))
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(body, list)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree)


def cache_key(params: dict | None = None) -> str:
    """sha256 of the code (:func:`_sources`), the parameters and the torch/NumPy versions."""
    p = dict(DEFAULT_PARAMS, **(params or {}))
    blob = (
        json.dumps({"params": p, "torch": torch.__version__.split("+")[0], "numpy": np.__version__}, sort_keys=True)
        + _sources()
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def load_or_run(params: dict | None = None, path: Path = RESULTS_JSON, log=None) -> tuple[dict, bool]:
    """``(results, from_cache)``: the cached results when ``path`` holds them under the current :func:`cache_key`,
    else a fresh :func:`run_experiment` (minutes on a shared CPU)."""
    key = cache_key(params)
    if path.exists():
        cached = json.loads(path.read_text())
        if cached.get("key") == key:
            return cached["results"], True
    return run_experiment(params, log=log), False


def write_cache(params: dict | None = None, path: Path = RESULTS_JSON, log=print) -> dict:
    """Run the experiment and write ``{"key", "results"}`` to ``path``; returns the results."""
    results = run_experiment(params, log=log)
    path.write_text(json.dumps({"key": cache_key(params), "results": results}, separators=(",", ":")) + "\n")
    return results


def summary(results: dict, arm: str, condition: str, first: int, stop: int) -> np.ndarray:
    """float64 ``(n_seeds,)``: each seed's accuracy over positions ``first .. stop - 1`` under ``condition``."""
    counts = np.asarray(results["correct"][arm][condition], dtype=np.float64)  # (seeds, positions)
    return counts[:, first:stop].sum(1) / (results["params"]["eval_batch"] * (stop - first))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"run the experiment and write {RESULTS_JSON.name}")
    parser.add_argument("--check", action="store_true", help="exit 1 when the committed cache is stale")
    args = parser.parse_args(argv)
    if args.check or not args.write:
        current = RESULTS_JSON.exists() and json.loads(RESULTS_JSON.read_text()).get("key") == cache_key()
        print(f"{RESULTS_JSON.name}: {'current' if current else 'stale or missing: run with --write'}")
        return 0 if current or not args.check else 1
    results = write_cache()
    print(f"wrote {RESULTS_JSON} ({results['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
