"""Accelerator constants (``data/accelerators.csv``): memory, memory bandwidth and peak bfloat16 throughput.

Each row copies a vendor datasheet's figures as printed, with its source. Derived quantities -- dense FLOP/s (the
datasheets print the 2:4-sparsity figure and footnote that dense is half), bytes of memory, and the *ridge point*
of the roofline (peak FLOP/s over memory bandwidth: the arithmetic intensity an operation needs to be limited by
compute rather than by memory) -- are computed here, never typed.

Datasheets print memory in "GB" whatever the unit they mean, so each row keeps the printed number
(``memory_printed_gb``) and the unit it is read in (``memory_unit``: ``GiB`` = ``2**30`` bytes or ``GB`` = ``1e9``),
with the evidence in its source: a capacity made of whole binary HBM stacks (H100, A100: five 16 GiB stacks;
MI300X: eight 24 GiB) is binary, and where the printed figure is an enabled part of the stacks (H200's 141 of six
24 GiB stacks) the capacity the driver reports decides it. Bandwidths are decimal (GB/s = ``1e9`` bytes per
second) and FLOP/s decimal too.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

__all__ = ["Accelerator", "ACCELERATORS_CSV", "load_accelerators", "get_accelerator", "GIB", "MEMORY_UNITS"]

ACCELERATORS_CSV = Path(__file__).with_name("data") / "accelerators.csv"
GIB = 2**30
#: bytes per unit a printed memory figure can be read in
MEMORY_UNITS = {"GiB": 2**30, "GB": 10**9}


@dataclass(frozen=True)
class Accelerator:
    """One accelerator's datasheet row. ``bf16_tensor_tflops_with_sparsity`` is the printed peak;
    ``sparsity_speedup`` the factor the datasheet's footnote says it includes (2 for 2:4 sparsity)."""

    accelerator: str
    memory_printed_gb: float
    memory_unit: str
    memory_bandwidth_gb_s: float
    bf16_tensor_tflops_with_sparsity: float
    sparsity_speedup: float
    source: str

    @property
    def memory_bytes(self) -> int:
        """Bytes of device memory: the printed figure times its unit (``2**30`` for GiB, ``1e9`` for GB)."""
        return int(self.memory_printed_gb * MEMORY_UNITS[self.memory_unit])

    @property
    def memory_gib(self) -> float:
        """Device memory in GiB (``memory_bytes / 2**30``), whatever unit the datasheet's figure is read in."""
        return self.memory_bytes / GIB

    @property
    def memory_gb(self) -> float:
        """Device memory in decimal GB (``memory_bytes / 1e9``)."""
        return self.memory_bytes / 1e9

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
                        "memory_printed_gb",
                        "memory_bandwidth_gb_s",
                        "bf16_tensor_tflops_with_sparsity",
                        "sparsity_speedup",
                    )
                }
            except (KeyError, ValueError) as exc:
                raise ValueError(f"{Path(path).name} line {line}: bad or missing number ({exc})") from None
            if min(values.values()) <= 0:
                raise ValueError(f"{Path(path).name} line {line}: every number must be positive")
            unit = row.get("memory_unit")
            if unit not in MEMORY_UNITS:
                raise ValueError(
                    f"{Path(path).name} line {line}: memory_unit must be one of {sorted(MEMORY_UNITS)}, got {unit!r}"
                )
            rows.append(Accelerator(accelerator=row["accelerator"], memory_unit=unit, source=row["source"], **values))
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
