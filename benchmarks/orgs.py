"""The simulated orgs the benchmarks run on: simulated once per size and seed, then kept in ``benchmarks/.data/``."""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).resolve().parent / ".data"


def org_folder(reps: int, months: int = 24, seed: int = 7) -> Path:
    """Where the simulated org of this size and seed is kept (whether or not it is there yet)."""
    return DATA / f"org_{reps}x{months}_s{seed}"


def org(reps: int, months: int = 24, seed: int = 7) -> Path:
    """The folder of the simulated org of this size and seed, simulated the first time it is asked for."""
    from training_roi.simulate import simulate

    folder = org_folder(reps, months, seed)
    if not (folder / "truth.json").exists():
        simulate(folder, reps=reps, months=months, seed=seed)
    return folder
