"""Accelerator constants (``data/accelerators.csv``): memory, memory bandwidth and peak bfloat16 throughput.

Each row copies a vendor datasheet's figures as printed, with its source. Derived quantities -- dense FLOP/s (the
datasheets print the 2:4-sparsity figure and footnote that dense is half), bytes of memory, and the *ridge point*
of the roofline (peak FLOP/s over memory bandwidth: the arithmetic intensity an operation needs to be limited by
compute rather than by memory) -- are computed here, never typed.

Memory is sold in binary units: an "80GB" H100 or A100 holds 80 GiB (``80 * 2**30`` bytes) of HBM, while
bandwidths are decimal (GB/s = ``1e9`` bytes per second) and FLOP/s decimal too.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

__all__ = ["Accelerator", "ACCELERATORS_CSV", "load_accelerators", "get_accelerator", "GIB"]

ACCELERATORS_CSV = Path(__file__).with_name("data") / "accelerators.csv"
GIB = 2**30


@dataclass(frozen=True)
class Accelerator:
    """One accelerator's datasheet row. ``bf16_tensor_tflops_with_sparsity`` is the printed peak;
    ``sparsity_speedup`` the factor the datasheet's footnote says it includes (2 for 2:4 sparsity)."""

    accelerator: str
    memory_gib: float
    memory_bandwidth_gb_s: float
    bf16_tensor_tflops_with_sparsity: float
    sparsity_speedup: float
    source: str

    @property
    def memory_bytes(self) -> int:
        """Bytes of device memory: ``memory_gib * 2**30``."""
        return int(self.memory_gib * GIB)

    @property
    def bandwidth_bytes_per_s(self) -> float:
        """Peak memory bandwidth in bytes per second."""
        return self.memory_bandwidth_gb_s * 1e9

    @property
    def bf16_dense_flops(self) -> float:
        """Peak dense bfloat16 tensor-core FLOP/s: the printed figure divided by the sparsity speedup."""
        return self.bf16_tensor_tflops_with_sparsity * 1e12 / self.sparsity_speedup

    @property
    def ridge_flops_per_byte(self) -> float:
        """Roofline ridge point: dense bf16 FLOP/s over bandwidth. Below it an operation is memory-bound."""
        return self.bf16_dense_flops / self.bandwidth_bytes_per_s


@lru_cache(maxsize=2)
def _load(path: str) -> tuple[Accelerator, ...]:
    rows = []
    with open(path, newline="", encoding="utf-8") as f:
        for line, row in enumerate(csv.DictReader(f), start=2):
            try:
                values = {
                    k: float(row[k])
                    for k in (
                        "memory_gib",
                        "memory_bandwidth_gb_s",
                        "bf16_tensor_tflops_with_sparsity",
                        "sparsity_speedup",
                    )
                }
            except (KeyError, ValueError) as exc:
                raise ValueError(f"{Path(path).name} line {line}: bad or missing number ({exc})") from None
            if min(values.values()) <= 0:
                raise ValueError(f"{Path(path).name} line {line}: every number must be positive")
            rows.append(Accelerator(accelerator=row["accelerator"], source=row["source"], **values))
    return tuple(rows)


def load_accelerators(path: str | Path | None = None) -> list[Accelerator]:
    """Every row of the accelerator table, in file order; ``ValueError`` naming a malformed line."""
    return list(_load(str(path or ACCELERATORS_CSV)))


def get_accelerator(name: str) -> Accelerator:
    """The row named ``name``; ``KeyError`` listing the known names otherwise."""
    for acc in load_accelerators():
        if acc.accelerator == name:
            return acc
    raise KeyError(
        f"no accelerator {name!r} in {ACCELERATORS_CSV.name}; known: {[a.accelerator for a in load_accelerators()]}"
    )
