"""A small class of exercise-1 submissions for the class-view tests (unit and browser).

Six students, built from ``tests/hostile/make_corpus.py``'s notebook writer:

- ``alice``: the correct answers;
- ``bob``: alice's answers with the local names changed and comments added;
- ``carol``: an identical copy of alice's file under another name;
- ``dave``: correct answers written independently (other formulas, a loop);
- ``erin``: wrong answers (the biases forgotten, ``np.roll`` wraps around);
- ``frank``: one answer that never returns (a time-out), the others not done.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOSTILE = ROOT / "tests" / "hostile"
TEMPLATE = HOSTILE / "template_ex01.json"
sys.path.insert(0, str(HOSTILE))
from make_corpus import GOOD, notebook  # noqa: E402

BOB = {
    "ex01.shift_images": (
        "def shift_images(x: np.ndarray, dx: int, dy: int) -> np.ndarray:\n"
        "    # start from an all-zero copy\n"
        "    result = np.zeros_like(x)\n"
        "    height, width = x.shape[1:3]\n"
        "    if abs(dx) >= width or abs(dy) >= height:  # shifted out of the picture\n"
        "        return result\n"
        "    src_r = slice(max(0, -dy), height - max(0, dy))\n"
        "    dst_r = slice(max(0, dy), height - max(0, -dy))\n"
        "    src_c = slice(max(0, -dx), width - max(0, dx))\n"
        "    dst_c = slice(max(0, dx), width - max(0, -dx))\n"
        "    result[:, dst_r, dst_c] = x[:, src_r, src_c]  # copy the overlap\n"
        "    return result"
    ),
    "ex01.dense_params": (
        "def dense_params(n_inputs: int, units: int) -> int:\n"
        "    # weights plus biases\n"
        "    return n_inputs * units + units"
    ),
    "ex01.conv_params": (
        "def conv_params(kernel_size: int, in_channels: int, filters: int) -> int:\n"
        "    return kernel_size * kernel_size * in_channels * filters + filters  # + bias"
    ),
}
DAVE = {
    "ex01.dense_params": (
        "def dense_params(n_inputs: int, units: int) -> int:\n    return (n_inputs + 1) * units"
    ),
    "ex01.conv_params": (
        "def conv_params(kernel_size: int, in_channels: int, filters: int) -> int:\n"
        "    per_filter = in_channels * kernel_size ** 2 + 1\n"
        "    return filters * per_filter"
    ),
    "ex01.shift_images": (
        "def shift_images(x: np.ndarray, dx: int, dy: int) -> np.ndarray:\n"
        "    n, h, w = x.shape[:3]\n"
        "    shifted = np.zeros_like(x)\n"
        "    for i in range(h):\n"
        "        for j in range(w):\n"
        "            si, sj = i - dy, j - dx\n"
        "            if 0 <= si < h and 0 <= sj < w:\n"
        "                shifted[:, i, j] = x[:, si, sj]\n"
        "    return shifted"
    ),
}
ERIN = {
    "ex01.dense_params": (
        "def dense_params(n_inputs: int, units: int) -> int:\n    return n_inputs * units"
    ),
    "ex01.conv_params": (
        "def conv_params(kernel_size: int, in_channels: int, filters: int) -> int:\n"
        "    return kernel_size * in_channels * filters"
    ),
    "ex01.shift_images": (
        "def shift_images(x: np.ndarray, dx: int, dy: int) -> np.ndarray:\n"
        "    return np.roll(np.roll(x, dy, axis=1), dx, axis=2)"
    ),
}
FRANK = {
    "ex01.conv_params": (
        "def conv_params(kernel_size: int, in_channels: int, filters: int) -> int:\n"
        "    while True:\n        pass"
    ),
}
ERIN_FIXED = {**ERIN, "ex01.dense_params": GOOD["ex01.dense_params"]}


def write(path: Path, answers: dict[str, str]) -> Path:
    path.write_text(json.dumps(notebook(answers)), encoding="utf-8")
    return path


def make_class(folder: Path) -> Path:
    """Write the six submissions into ``folder`` (created); return it."""
    folder.mkdir(parents=True, exist_ok=True)
    write(folder / "alice.ipynb", GOOD)
    write(folder / "bob.ipynb", BOB)
    (folder / "carol.ipynb").write_bytes((folder / "alice.ipynb").read_bytes())
    write(folder / "dave.ipynb", DAVE)
    write(folder / "erin.ipynb", ERIN)
    write(folder / "frank.ipynb", FRANK)
    return folder
