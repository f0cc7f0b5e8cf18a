"""``python -m autograder.measure.embedding_bench`` (``make bench``): how fast are an embedding lookup and its
gradient, next to a copy?

For each vocabulary size ``V`` and dimension ``D`` of a grid, a float32 table ``W (V, D)`` and ``n`` int64 token
ids drawn from a Zipf distribution (rank ``r`` has probability proportional to ``1 / r``, the ranks shuffled over
the ids, as in natural text) are built once, then

* **forward** ``out = W[ids]`` ``(n, D)``: NumPy fancy indexing, ``np.take``, ``torch.index_select`` and
  ``torch.nn.functional.embedding``, each allocating its output, and ``np.take`` / ``torch.index_select`` into
  a preallocated output (``out=``);
* **backward** ``G (V, D)`` with ``G[v] = sum of grad_out[p] over ids[p] == v``: ``np.add.at``, sort +
  ``np.add.reduceat``, ``torch.Tensor.index_add_``, and ``nn.Embedding``'s backward with a dense gradient and
  with ``sparse=True`` (uncoalesced, and coalesced),

are checked against each other, then timed with :func:`autograder.measure.timing.measure_bandwidth` next to a copy
of the same number of bytes. A copy past the last-level cache is timed at the start, middle and end of the run: the
memory limit. NumPy variants run on the CPU only; on a CUDA run the torch variants run on the GPU.

Bytes moved (what an ideal kernel must read plus write, each once; float32 values, int64 ids) are counted by
:mod:`autograder.measure.embedding_bytes`:

* forward: ``8n`` (ids) + ``4nD`` (the rows read) + ``4nD`` (the output);
* dense backward: ``8n + 4nD`` (ids and ``grad_out`` read) + ``4VD`` (the dense gradient written). Every dense
  variant really writes those ``4VD`` bytes: ``torch.zeros`` fills its memory, and the NumPy variants allocate with
  ``np.empty`` and fill it with zeros themselves, since ``np.zeros`` gets pages the kernel zeroes only when first
  touched, and the rows no id lands on would then be credited as written without ever being written;
* sparse backward, uncoalesced: ``8n`` read + ``8n`` written (the values tensor is ``grad_out`` itself, a view);
* sparse backward, coalesced: ``8n + 4nD`` read + ``4UD + 8U`` written (``U`` distinct ids).

The results go to ``autograder/data/bench/<device-slug>.json`` (``--quick``: a small grid, written under
``_build/bench/`` unless ``--out`` says otherwise, never mistaken for a full run). :func:`plot_forward` and
:func:`plot_backward` draw a results file; the book's "Measurements" page calls them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import platform
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from autograder.reference import numpy_ref

from . import timing
from .embedding_bytes import dense_backward_bytes, forward_bytes, sparse_backward_bytes, sparse_uncoalesced_bytes
from .scatter import scatter_add_sorted
from .zipf import zipf_ids

PACKAGE = Path(__file__).resolve().parents[1]
DATA_DIR = PACKAGE / "data" / "bench"
QUICK_DIR = PACKAGE.parent / "_build" / "bench"
COMMAND = "python -m autograder.measure.embedding_bench"
SCHEMA = 1


@dataclass(frozen=True)
class Grid:
    """What to measure: vocabulary sizes, dimensions, tokens per batch, repeats (odd, so the median is a sample)."""

    vocabs: tuple[int, ...]
    dims: tuple[int, ...]
    n_tokens: int
    warmup: int
    repeats: int
    zipf_exponent: float = 1.0
    #: cap on each buffer of the past-the-cache copy (None: four times the last-level cache, a memory bandwidth)
    memory_copy_max_bytes: int | None = None


#: GPT-2-small-like to Gemma-like vocabularies; a small and a large model's width; 4 sequences of 2048 tokens.
FULL = Grid(vocabs=(1024, 32768, 262144), dims=(128, 1024), n_tokens=8192, warmup=2, repeats=11)
#: seconds, for tests: the past-the-cache copy is capped at 8 MiB buffers (uncapped, a 480 MiB L3 means 2 x 1.9 GiB)
QUICK = Grid(vocabs=(64, 1024), dims=(8,), n_tokens=256, warmup=1, repeats=3, memory_copy_max_bytes=8 * 2**20)


# --------------------------------------------------------------------------------------------------------------
# workload (ids from .zipf, bytes from .embedding_bytes)
# --------------------------------------------------------------------------------------------------------------
@dataclass
class Case:
    """One grid point's data: ``weight (V, D)`` float32, ``ids (n,)`` int64, ``grad_out (n, D)`` float32, in NumPy
    and as torch tensors on ``device``."""

    vocab: int
    dim: int
    ids: np.ndarray
    weight: np.ndarray
    grad_out: np.ndarray
    device: torch.device

    def __post_init__(self) -> None:
        self.ids_t = torch.from_numpy(self.ids).to(self.device)
        self.weight_t = torch.from_numpy(self.weight).to(self.device)
        self.grad_out_t = torch.from_numpy(self.grad_out).to(self.device)
        self.unique = int(np.unique(self.ids).size)


def make_case(vocab: int, dim: int, grid: Grid, device: torch.device, seed: int = 0) -> Case:
    rng = np.random.default_rng([seed, vocab, dim])
    ids = zipf_ids(grid.n_tokens, vocab, rng, grid.zipf_exponent)
    weight = rng.standard_normal((vocab, dim), dtype=np.float32)
    grad_out = rng.standard_normal((grid.n_tokens, dim), dtype=np.float32)
    return Case(vocab, dim, ids, weight, grad_out, device)


# --------------------------------------------------------------------------------------------------------------
# the variants: each returns a function of no arguments and the bytes it moves
# --------------------------------------------------------------------------------------------------------------
def _np_add_at_backward(c: Case) -> np.ndarray:
    # np.empty + fill writes the whole gradient, as torch.zeros does; np.zeros would leave the pages no row lands
    # on to the kernel's lazy zeroing, never written, and the 4VD bytes credited would overstate the bandwidth
    grad = np.empty((c.vocab, c.dim), dtype=c.grad_out.dtype)
    grad.fill(0)
    np.add.at(grad, c.ids, c.grad_out)
    return grad


def _torch_index_add_backward(c: Case) -> torch.Tensor:
    grad = torch.zeros((c.vocab, c.dim), dtype=c.grad_out_t.dtype, device=c.device)
    return grad.index_add_(0, c.ids_t, c.grad_out_t)


def _module_backward(c: Case, sparse: bool, coalesce: bool) -> Callable[[], torch.Tensor]:
    """``nn.Embedding`` sharing the case's table (``Parameter`` aliases its storage, no copy); the forward runs once,
    each call re-runs only the backward into a fresh ``weight.grad`` (as after ``zero_grad(set_to_none=True)``)."""
    module = torch.nn.Embedding(c.vocab, c.dim, _weight=c.weight_t, sparse=sparse, device=c.device)
    out = module(c.ids_t)

    def backward() -> torch.Tensor:
        module.weight.grad = None
        out.backward(c.grad_out_t, retain_graph=True)
        return module.weight.grad.coalesce() if coalesce else module.weight.grad

    return backward


def variants(c: Case) -> list[tuple[str, str, str, Callable[[], object], int]]:
    """``(kind, library, name, fn, bytes_moved)`` for every variant that runs on the case's device.

    Forward variants come in two flavours: allocating a fresh ``(n, D)`` output on every call (what
    ``W[ids]`` and ``F.embedding`` do in a model) and writing into a preallocated one (``out=``), which separates
    the cost of fresh memory from the gather itself. ``np.take`` gets ``mode="clip"`` there because with the
    default ``mode="raise"`` NumPy buffers ``out`` (an extra copy); the ids were checked to be in range.
    """
    n, d, v = c.ids.size, c.dim, c.vocab
    on_cpu = c.device.type == "cpu"
    fwd, dense = forward_bytes(n, d), dense_backward_bytes(n, v, d)
    out_np = np.empty((n, d), dtype=c.weight.dtype)
    out_t = torch.empty((n, d), dtype=c.weight_t.dtype, device=c.device)
    out = []
    if on_cpu:
        out += [
            ("forward", "numpy", "NumPy fancy index W[ids]", lambda: c.weight[c.ids], fwd),
            ("forward", "numpy", "np.take(W, ids, axis=0)", lambda: np.take(c.weight, c.ids, axis=0), fwd),
            (
                "forward",
                "numpy",
                "np.take(..., out=preallocated, mode='clip')",
                lambda: np.take(c.weight, c.ids, axis=0, out=out_np, mode="clip"),
                fwd,
            ),
        ]
    out += [
        ("forward", "torch", "torch.index_select", lambda: torch.index_select(c.weight_t, 0, c.ids_t), fwd),
        ("forward", "torch", "F.embedding", lambda: F.embedding(c.ids_t, c.weight_t), fwd),
        (
            "forward",
            "torch",
            "torch.index_select(..., out=preallocated)",
            lambda: torch.index_select(c.weight_t, 0, c.ids_t, out=out_t),
            fwd,
        ),
    ]
    if on_cpu:
        out += [
            ("backward", "numpy", "np.add.at (dense)", lambda: _np_add_at_backward(c), dense),
            (
                "backward",
                "numpy",
                "sort + np.add.reduceat (dense)",
                lambda: scatter_add_sorted(c.grad_out, c.ids, c.vocab, out=np.empty((v, d), dtype=c.grad_out.dtype)),
                dense,
            ),
        ]
    out += [
        ("backward", "torch", "torch index_add_ (dense)", lambda: _torch_index_add_backward(c), dense),
        ("backward", "torch", "nn.Embedding backward, dense", _module_backward(c, False, False), dense),
        (
            "backward",
            "torch",
            "nn.Embedding backward, sparse",
            _module_backward(c, True, False),
            sparse_uncoalesced_bytes(n),
        ),
        (
            "backward",
            "torch",
            "nn.Embedding backward, sparse + coalesce",
            _module_backward(c, True, True),
            sparse_backward_bytes(n, c.unique, d),
        ),
    ]
    return out


def _as_dense_numpy(result) -> np.ndarray:
    if isinstance(result, torch.Tensor):
        result = result.to_dense() if result.is_sparse else result
        return result.detach().cpu().numpy()
    return np.asarray(result)


def check_variants(c: Case, vs: list | None = None) -> None:  # vs: variants(c), when the caller has them
    """Every variant must agree with the NumPy reference before it is timed (forward exactly, backward to float32
    rounding, since summation order differs). Raises ``AssertionError`` naming the variant that disagrees."""
    expected = {
        "forward": numpy_ref.embedding_forward(c.weight, c.ids),
        "backward": numpy_ref.embedding_backward(c.grad_out, c.ids, c.vocab),
    }
    for kind, _, name, fn, _ in vs or variants(c):
        got = _as_dense_numpy(fn())
        ok = (
            np.array_equal(got, expected[kind])
            if kind == "forward"
            else np.allclose(got, expected[kind], rtol=1e-5, atol=1e-4)
        )
        if not ok:
            raise AssertionError(f"{name} disagrees with the reference {kind} for V={c.vocab}, D={c.dim}")


# --------------------------------------------------------------------------------------------------------------
# the run
# --------------------------------------------------------------------------------------------------------------
def _memory_copy(device: torch.device, grid: Grid) -> dict:
    n_bytes, t = timing.memory_copy_baseline(
        device=device, max_buffer_bytes=grid.memory_copy_max_bytes, warmup=grid.warmup, repeats=grid.repeats
    )
    return {"bytes": n_bytes, "gbps": n_bytes / t.median_s / 1e9, **t.to_dict()}


def run(
    grid: Grid = FULL,
    device: torch.device | str | None = None,
    *,
    quick: bool = False,
    progress: bool = True,
    threads: int | None = None,
    command: str = "",
) -> dict:
    """Measure every variant on every grid point; returns the JSON-ready results (see the module docstring).

    ``threads`` sets ``torch.set_num_threads`` for the run (restored afterwards); ``None`` keeps torch's default.
    """
    if threads is not None and (int(threads) != threads or threads < 1):
        raise ValueError(f"threads must be a positive integer, got {threads!r}")
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(int(threads))
    try:
        return _run(grid, device, quick=quick, progress=progress, command=command)
    finally:
        torch.set_num_threads(previous)


def _run(grid: Grid, device, *, quick: bool, progress: bool, command: str) -> dict:
    device = torch.device(device) if device is not None else timing.default_device()
    name = timing.device_name(device)
    cpu_name = timing.device_name("cpu")
    started = dt.datetime.now(dt.UTC)
    points = [(v, d) for d in grid.dims for v in grid.vocabs]
    n_variants = len(variants(make_case(8, 2, Grid((8,), (2,), 4, 0, 1), device)))
    bar = tqdm(total=len(points) * n_variants + 3, desc="benchmark", unit="measurement", disable=not progress)
    memory_copies = [_memory_copy(device, grid)]
    bar.update()
    records = []
    for i, (vocab, dim) in enumerate(points):
        case = make_case(vocab, dim, grid, device)
        case_variants = variants(case)
        check_variants(case, case_variants)
        for kind, library, op_name, fn, n_bytes in case_variants:
            bar.set_postfix_str(f"V={vocab} D={dim} {op_name}")
            op_device = device if library == "torch" else torch.device("cpu")
            bw = timing.measure_bandwidth(
                op_name, fn, n_bytes, device=op_device, memory_copy=False, warmup=grid.warmup, repeats=grid.repeats
            )
            records.append(
                {
                    "kind": kind,
                    "library": library,
                    "op": op_name,
                    "device": bw.op.device,
                    "vocab": vocab,
                    "dim": dim,
                    "n_tokens": grid.n_tokens,
                    "unique_ids": case.unique,
                    "table_bytes": case.weight.nbytes,
                    "bytes_moved": n_bytes,
                    "median_s": bw.op.median_s,
                    "p10_s": bw.op.p10_s,
                    "p90_s": bw.op.p90_s,
                    "gbps": bw.gbps,
                    "gbps_p10": n_bytes / bw.op.p90_s / 1e9,
                    "gbps_p90": n_bytes / bw.op.p10_s / 1e9,
                    "copy_median_s": bw.copy.median_s,
                    "copy_p10_s": bw.copy.p10_s,
                    "copy_p90_s": bw.copy.p90_s,
                    "copy_gbps": bw.copy_gbps,
                    "fraction_of_copy": bw.fraction_of_copy,
                    "fits_in_cache": bw.fits_in_cache,
                    "samples_s": list(bw.op.samples_s),
                }
            )
            bar.update()
        del case
        if i == len(points) // 2 - 1:
            memory_copies.append(_memory_copy(device, grid))
            bar.update()
    memory_copies.append(_memory_copy(device, grid))
    bar.update()
    bar.close()
    memory_gbps = float(np.median([m["gbps"] for m in memory_copies]))
    for r in records:
        r["fraction_of_memory"] = r["gbps"] / memory_gbps if r["device"] == name else None
    return {
        "schema": SCHEMA,
        "quick": quick,
        "command": command,
        "device": name,
        "device_type": device.type,
        "slug": timing.device_slug(name),
        "cpu": cpu_name,
        "date": started.strftime("%Y-%m-%d"),
        "started_utc": started.isoformat(timespec="seconds"),
        "seconds": round((dt.datetime.now(dt.UTC) - started).total_seconds(), 1),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cache_bytes": timing.last_level_cache_bytes(device),
        "grid": {
            "vocabs": list(grid.vocabs),
            "dims": list(grid.dims),
            "n_tokens": grid.n_tokens,
            "warmup": grid.warmup,
            "repeats": grid.repeats,
            "zipf_exponent": grid.zipf_exponent,
            "memory_copy_max_bytes": grid.memory_copy_max_bytes,
        },
        "memory_copy_gbps": memory_gbps,
        "memory_copies": memory_copies,
        "results": records,
    }


def write(result: dict, out: Path | str | None = None) -> Path:
    """Write ``result`` as JSON to ``out`` (a file, or a folder for ``<slug>.json``); default
    ``autograder/data/bench/`` for a full run and ``_build/bench/`` for a quick one. Returns the path."""
    out = Path(out) if out is not None else (QUICK_DIR if result["quick"] else DATA_DIR)
    path = out / f"{result['slug']}.json" if out.suffix != ".json" else out
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1) + "\n")
    return path


# --------------------------------------------------------------------------------------------------------------
# reading and plotting (the book's Measurements page)
# --------------------------------------------------------------------------------------------------------------
def load_results(folder: Path | str = DATA_DIR, *, include_quick: bool = False) -> list[dict]:
    """Every committed results file in ``folder``, CPU runs first, then by device name. Quick runs are skipped
    unless ``include_quick``. Raises ``ValueError`` naming a file with another schema version."""
    results = []
    for path in sorted(Path(folder).glob("*.json")):
        result = json.loads(path.read_text())
        if result.get("schema") != SCHEMA:
            raise ValueError(f"{path}: benchmark schema {result.get('schema')!r}, expected {SCHEMA}; re-run {COMMAND}")
        if include_quick or not result["quick"]:
            results.append(result)
    return sorted(results, key=lambda r: (r["device_type"] != "cpu", r["device"]))


def select(result: dict, **where) -> list[dict]:
    """The records of ``result`` whose fields equal ``where`` (e.g. ``kind="forward", dim=128``)."""
    return [r for r in result["results"] if all(r[k] == v for k, v in where.items())]


def lookup(result: dict, **where) -> dict:
    """The single record matching ``where``; ``KeyError`` if there is none or more than one."""
    found = select(result, **where)
    if len(found) != 1:
        raise KeyError(f"{len(found)} records match {where} in the {result['device']} results")
    return found[0]


def fastest(result: dict, kind: str, vocab: int, dim: int) -> dict:
    """The record of the fastest ``kind`` variant (lowest median time) at one grid point."""
    found = select(result, kind=kind, vocab=vocab, dim=dim)
    if not found:
        raise KeyError(f"no {kind} records for V={vocab}, D={dim} in the {result['device']} results")
    return min(found, key=lambda r: r["median_s"])


def markdown_table(result: dict, kind: str) -> str:
    """A Markdown table of every ``kind`` record: V, D, variant, median ms (p10-p90), GB/s, ratio to the copy of
    the same bytes and to the memory copy."""
    rows = [
        "| V | D | variant | median ms (p10-p90) | GB/s | of same-bytes copy | of memory copy |",
        "|--:|--:|:--|--:|--:|--:|--:|",
    ]
    for r in sorted(select(result, kind=kind), key=lambda r: (r["dim"], r["vocab"])):
        memory = "" if r.get("fraction_of_memory") is None else f"{r['fraction_of_memory']:.0%}"
        rows.append(
            f"| {r['vocab']:,} | {r['dim']:,} | `{r['op']}` | {r['median_s'] * 1e3:,.3f} "
            f"({r['p10_s'] * 1e3:,.3f}-{r['p90_s'] * 1e3:,.3f}) | {r['gbps']:,.1f} | "
            f"{r['fraction_of_copy']:.0%} | {memory} |"
        )
    return "\n".join(rows)


def _memory_copy_phrase(result: dict) -> str:
    """What the results' memory copy was: past the cache, or (a quick run) capped and possibly from cache."""
    cap = result["grid"].get("memory_copy_max_bytes")  # absent in files written before the cap existed
    if cap is None:
        return "a copy past the cache moves"
    return f"a copy of buffers capped at {cap / 2**20:,.0f} MiB (perhaps from cache, no memory bandwidth) moves"


def summarize(result: dict) -> str:
    """A Markdown paragraph of the headline figures of one results file (any device), every number from it."""
    vocabs, dims = result["grid"]["vocabs"], result["grid"]["dims"]
    small, large = (min(vocabs), min(dims)), (max(vocabs), max(dims))
    fs, fl = fastest(result, "forward", *small), fastest(result, "forward", *large)
    dense = [r for r in select(result, kind="backward", vocab=large[0], dim=large[1]) if "dense" in r["op"]]
    bd = min(dense, key=lambda r: r["median_s"])
    sparse = lookup(
        result, kind="backward", vocab=large[0], dim=large[1], op="nn.Embedding backward, sparse + coalesce"
    )
    return (
        f"On **{result['device']}** ({result['date']}, torch {result['torch']}): {_memory_copy_phrase(result)} "
        f"{result['memory_copy_gbps']:,.1f} GB/s. The fastest lookup of {result['grid']['n_tokens']:,} tokens "
        f"from a {small[0]:,} x {small[1]:,} table is `{fs['op']}` at {fs['gbps']:,.1f} GB/s "
        f"({fs['fraction_of_copy']:.0%} of a copy of the same bytes); from a {large[0]:,} x {large[1]:,} table "
        f"it is `{fl['op']}` at {fl['gbps']:,.1f} GB/s ({fl['fraction_of_copy']:.0%}). For that table the "
        f"fastest dense gradient, `{bd['op']}`, takes {bd['median_s'] * 1e3:,.2f} ms; the coalesced sparse "
        f"gradient takes {sparse['median_s'] * 1e3:,.2f} ms."
    )


def _styles(names):
    markers = "osD^v<>P"
    return {name: markers[i % len(markers)] for i, name in enumerate(names)}


def _plot_panels(result: dict, kind: str, height: float, title: str, ylabel: str, draw, extra=None):
    """The frame both plots share: one log-log panel per dimension with one series per ``kind`` variant, drawn by
    ``draw(ax, records sorted by vocab, op, marker)``, then ``extra(ax, dim)`` if given; a shared legend and the
    device as the title. Returns the matplotlib ``Figure``."""
    import matplotlib.pyplot as plt

    dims = result["grid"]["dims"]
    fig, axes = plt.subplots(
        1, len(dims), figsize=(5.2 * len(dims), height), sharey=True, squeeze=False, layout="constrained"
    )
    ops = list(dict.fromkeys(r["op"] for r in select(result, kind=kind)))
    markers = _styles(ops)
    for ax, dim in zip(axes[0], dims, strict=True):
        for op in ops:
            draw(ax, sorted(select(result, kind=kind, op=op, dim=dim), key=lambda r: r["vocab"]), op, markers[op])
        if extra is not None:
            extra(ax, dim)
        ax.set(
            xscale="log",
            yscale="log",
            xlabel="vocabulary size V (table rows)",
            title=title.format(n_tokens=result["grid"]["n_tokens"], dim=dim),
        )
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel(ylabel)
    fig.legend(*axes[0][0].get_legend_handles_labels(), loc="outside lower center", ncol=3, fontsize=8)
    fig.suptitle(result["device"], fontsize=10)
    return fig


def plot_forward(result: dict):
    """One panel per dimension: achieved GB/s of each lookup variant against the vocabulary size, with the copy of
    the same bytes (dotted) and the copy past the cache (dashed). Returns the matplotlib ``Figure``."""

    def draw(ax, rs, op, marker):
        ax.errorbar(
            [r["vocab"] for r in rs],
            [r["gbps"] for r in rs],
            marker=marker,
            capsize=3,
            label=op,
            yerr=[[r["gbps"] - r["gbps_p10"] for r in rs], [r["gbps_p90"] - r["gbps"] for r in rs]],
        )

    def copies(ax, dim):
        vocabs = sorted({r["vocab"] for r in select(result, kind="forward", dim=dim)})
        copy_gbps = [
            float(np.median([r["copy_gbps"] for r in select(result, kind="forward", dim=dim, vocab=v)])) for v in vocabs
        ]  # every variant had its own alternating copy: their median
        ax.plot(vocabs, copy_gbps, "k:", label="copy of the same bytes")
        ax.axhline(result["memory_copy_gbps"], color="k", ls="--", lw=1, label="copy past the cache (memory)")

    return _plot_panels(
        result,
        "forward",
        4.8,
        "lookup of {n_tokens:,} tokens, D = {dim}",
        "achieved GB/s (median, p10-p90 bars)",
        draw,
        copies,
    )


def plot_backward(result: dict):
    """One panel per dimension: median time of each backward variant (p10-p90 bars) against the vocabulary size.
    Returns the matplotlib ``Figure``."""

    def draw(ax, rs, op, marker):
        ms = [r["median_s"] * 1e3 for r in rs]
        ax.errorbar(
            [r["vocab"] for r in rs],
            ms,
            marker=marker,
            capsize=3,
            label=op,
            yerr=[
                [m - r["p10_s"] * 1e3 for m, r in zip(ms, rs, strict=True)],
                [r["p90_s"] * 1e3 - m for m, r in zip(ms, rs, strict=True)],
            ],
        )

    return _plot_panels(
        result,
        "backward",
        4.6,
        "gradient of {n_tokens:,} tokens, D = {dim}",
        "milliseconds per backward (median)",
        draw,
    )


# --------------------------------------------------------------------------------------------------------------
# keeping the built book in step with the data
# --------------------------------------------------------------------------------------------------------------
def data_fingerprint(folder: Path | str = DATA_DIR) -> str:
    """12 hex digits of SHA-256 over the names and contents of the results files in ``folder``."""
    digest = hashlib.sha256()
    for path in sorted(Path(folder).glob("*.json")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def sync_book_cache(build_dir: Path | str = PACKAGE.parent / "_build", folder: Path | str = DATA_DIR) -> bool:
    """Make the next book build re-execute the Measurements page if the results files changed since the last
    call (added, removed or edited). Jupyter-cache keys a page on its code and Sphinx on its source file, neither
    on the data it reads, so both caches under ``build_dir`` are dropped. Returns True when they were."""
    build_dir = Path(build_dir)
    stamp = build_dir / f".bench-data-{data_fingerprint(folder)}"
    if stamp.exists():
        return False
    for cache in (build_dir / ".jupyter_cache", build_dir / ".doctrees"):
        shutil.rmtree(cache, ignore_errors=True)
    for old in build_dir.glob(".bench-data-*"):
        old.unlink()
    build_dir.mkdir(parents=True, exist_ok=True)
    stamp.touch()
    return True


# --------------------------------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a small grid in seconds (for tests); written under _build/bench/ unless --out is given",
    )
    parser.add_argument(
        "--device", choices=["cpu", "cuda"], default=None, help="default: cuda when a GPU is present, else cpu"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="a .json file or a folder for <device-slug>.json (default: autograder/data/bench/)",
    )
    parser.add_argument(
        "--plot", type=Path, default=None, help="also save the two figures as PLOT-forward.png and PLOT-backward.png"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (default: torch's choice); "
        "1 on a small shared machine, where a 2-thread parallel region waits for a busy core",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--sync-book-cache",
        action="store_true",
        help="measure nothing: if the committed results "
        "changed since the last book build, drop the build caches so the Measurements page re-runs",
    )
    args = parser.parse_args(argv)
    if args.sync_book_cache:
        if sync_book_cache():
            print("benchmark results changed: the book's execution cache was dropped")
        return 0
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA GPU is available here; omit --device to run on the CPU")
    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads must be at least 1, got {args.threads}")
    command = COMMAND + " " + " ".join(argv if argv is not None else sys.argv[1:])
    result = run(
        QUICK if args.quick else FULL,
        args.device,
        quick=args.quick,
        progress=not args.no_progress,
        threads=args.threads,
        command=command.strip(),
    )
    path = write(result, args.out)
    print(f"{len(result['results'])} measurements on {result['device']} in {result['seconds']:.0f} s -> {path}")
    print(f"{_memory_copy_phrase(result)} {result['memory_copy_gbps']:.1f} GB/s")
    for r in result["results"]:
        print(
            f"  {r['kind']:8s} V={r['vocab']:>7,} D={r['dim']:>5} {r['op']:42s} {r['median_s'] * 1e3:9.3f} ms "
            f"{r['gbps']:7.1f} GB/s  {r['fraction_of_copy']:6.0%} of copy"
        )
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        args.plot.parent.mkdir(parents=True, exist_ok=True)
        plot_forward(result).savefig(f"{args.plot}-forward.png", dpi=110)
        plot_backward(result).savefig(f"{args.plot}-backward.png", dpi=110)
    return 0


if __name__ == "__main__":
    sys.exit(main())
