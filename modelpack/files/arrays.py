"""Arrays the build hands between its processes as .npz files: a model's outputs are saved as out_0, out_1, ..."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def load_outputs(path: Path) -> list[np.ndarray]:
    """The model outputs a step or probe saved as out_0, out_1, ... in an .npz file."""
    with np.load(path) as npz:
        return [npz[f"out_{i}"] for i in range(len(npz.files))]
