"""How well does the similarity check separate copies from independent work?

Generates a class of answer documents for four NumPy tasks of the course (zero padding, the
output size of a convolution, max pooling, a 2-D convolution) and runs
:func:`cnncourse.grading.similarity.find_similar` on it, as ``cnncourse grade`` does.

- *Independent* students each write every task themselves: one of two to four ways to
  solve it (slicing or ``np.pad``, loops or a vectorised window, im2col, ...), with their own
  choices at every point where correct code can differ (the order of independent lines and
  of the operands of ``+`` and ``*``, ``range(n)`` or ``range(0, n)``, a tuple or a list,
  ...). Students who pick the same approach still write much the same short code, as real
  students do: the short tasks alone cannot tell a copy from a coincidence.
- *Copiers* take another student's document and disguise it: ``renamed`` (every local name
  and argument changed, the code re-printed by ``ast.unparse``), ``commented`` (comments and
  blank lines added), ``reordered`` (functions in another order), ``all three``, or
  ``partial`` (two of the four tasks copied and renamed, the other two written
  independently).

A pair counts as a true copy when the two documents share copied code (one copied the other,
or both copied the same source). Precision: the share of listed pairs that are true copies.
Recall: the share of true-copy pairs that are listed, per disguise. The generator is seeded:
the same class and the same figures each run.

Run: ``python bench/similarity_bench.py [--students 60] [--copiers 20] [--seeds 7 8 9]``
"""

from __future__ import annotations

import argparse
import ast
import itertools
import random
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from cnncourse.grading.similarity import THRESHOLD, find_similar  # noqa: E402

TEMPLATE = '''import numpy as np
def zero_pad(x, pad):
    """Pad the height and width of a batch (N, H, W, C) with zeros."""
    raise NotImplementedError
def conv_output_size(n, k, stride=1, pad=0):
    """The output size of a convolution along one axis."""
    raise NotImplementedError
def max_pool2d(x, size=2, stride=2):
    """Max pooling of a batch (N, H, W, C)."""
    raise NotImplementedError
def conv2d(x, w, b, stride=1, pad=0):
    """A convolution layer: x (N, H, W, C), w (k, k, C, F), b (F,)."""
    raise NotImplementedError
'''

NAMES = {
    "x": ["x", "images", "batch", "inp", "X", "a"],
    "out": ["out", "result", "res", "y", "output", "padded"],
    "n": ["n", "size", "length", "dim"],
    "h": ["h", "height", "rows", "H"],
    "w_": ["w_", "width", "cols", "W_"],
    "i": ["i", "r", "row", "ii"],
    "j": ["j", "c", "col", "jj"],
}


def _pick(rng: random.Random, *options: str) -> str:
    return rng.choice(options)


def _zero_pad(rng: random.Random) -> str:
    if rng.random() < 0.5:
        pads = _pick(
            rng,
            "((0, 0), (pad, pad), (pad, pad), (0, 0))",
            "[(0, 0), (pad, pad), (pad, pad), (0, 0)]",
        )
        extra = _pick(rng, "", ", constant_values=0", ", mode='constant'")
        return f"def zero_pad(x, pad):\n    return np.pad(x, {pads}{extra})\n"
    shape = _pick(
        rng,
        "(x.shape[0], x.shape[1] + 2 * pad, x.shape[2] + 2 * pad, x.shape[3])",
        "(n, h + 2 * pad, w_ + 2 * pad, c)",
    )
    unpack = "" if "x.shape[0]" in shape else "    n, h, w_, c = x.shape\n"
    zeros = _pick(rng, f"np.zeros({shape}, dtype=x.dtype)", f"np.zeros({shape})")
    end = _pick(rng, "pad + x.shape[1]", "-pad or None")
    end2 = _pick(rng, "pad + x.shape[2]", "-pad or None")
    return (
        f"def zero_pad(x, pad):\n{unpack}    out = {zeros}\n"
        f"    out[:, pad:{end}, pad:{end2}, :] = x\n    return out\n"
    )


def _conv_output_size(rng: random.Random) -> str:
    body = _pick(
        rng,
        "    return (n + 2 * pad - k) // stride + 1\n",
        "    return int((n - k + 2 * pad) / stride) + 1\n",
        "    padded = n + 2 * pad\n    return (padded - k) // stride + 1\n",
        "    return 1 + (n + pad * 2 - k) // stride\n",
    )
    return "def conv_output_size(n, k, stride=1, pad=0):\n" + body


def _max_pool2d(rng: random.Random) -> str:
    size_line = _pick(
        rng,
        "    n, h, w_, c = x.shape\n    oh = (h - size) // stride + 1\n"
        "    ow = (w_ - size) // stride + 1\n",
        "    n, h, w_, c = x.shape\n    ow = (w_ - size) // stride + 1\n"
        "    oh = (h - size) // stride + 1\n",
        "    n, h, w_, c = x.shape\n    oh = 1 + (h - size) // stride\n"
        "    ow = 1 + (w_ - size) // stride\n",
    )
    if rng.random() < 0.5:
        reduce = _pick(
            rng,
            "window.max(axis=(1, 2))",
            "np.max(window, axis=(1, 2))",
            "np.amax(window, axis=(1, 2))",
        )
        loops = _pick(
            rng,
            "for i in range(oh):\n        for j in range(ow):",
            "for j in range(ow):\n        for i in range(oh):",
        )
        return (
            "def max_pool2d(x, size=2, stride=2):\n"
            + size_line
            + "    out = np.zeros((n, oh, ow, c))\n"
            + f"    {loops}\n"
            + "            window = x[:, i * stride:i * stride + size, j * stride:j * stride"
            + " + size, :]\n"
            + f"            out[:, i, j, :] = {reduce}\n    return out\n"
        )
    return (
        "def max_pool2d(x, size=2, stride=2):\n"
        + size_line
        + "    out = np.full((n, oh, ow, c), -np.inf)\n"
        + "    for di in range(size):\n        for dj in range(size):\n"
        + "            part = x[:, di:di + stride * oh:stride, dj:dj + stride * ow:stride, :]\n"
        + f"            out = {_pick(rng, 'np.maximum(out, part)', 'np.fmax(out, part)')}\n"
        + "    return out\n"
    )


def _conv2d(rng: random.Random) -> str:
    head = "def conv2d(x, w, b, stride=1, pad=0):\n"
    pad_line = _pick(
        rng,
        "    xp = zero_pad(x, pad)\n",
        "    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))\n",
    )
    dims = _pick(
        rng,
        "    n, h, w_, c = x.shape\n    k, _, _, f = w.shape\n",
        "    k, _, _, f = w.shape\n    n, h, w_, c = x.shape\n",
    )
    sizes = _pick(
        rng,
        "    oh = conv_output_size(h, k, stride, pad)\n"
        "    ow = conv_output_size(w_, k, stride, pad)\n",
        "    oh = (h + 2 * pad - k) // stride + 1\n    ow = (w_ + 2 * pad - k) // stride + 1\n",
    )
    style = rng.randrange(3)
    if style == 0:  # a window at a time, tensordot over (k, k, C)
        dot = _pick(
            rng,
            "np.tensordot(patch, w, axes=([1, 2, 3], [0, 1, 2]))",
            "np.einsum('nijc,ijcf->nf', patch, w)",
        )
        body = (
            "    out = np.zeros((n, oh, ow, f))\n"
            "    for i in range(oh):\n        for j in range(ow):\n"
            "            patch = xp[:, i * stride:i * stride + k, j * stride:j * stride + k, :]\n"
            f"            out[:, i, j, :] = {dot} + b\n    return out\n"
        )
    elif style == 1:  # one output channel at a time
        body = (
            "    out = np.zeros((n, oh, ow, f))\n"
            "    for m in range(f):\n        for i in range(oh):\n            for j in range(ow):\n"
            "                r0, c0 = i * stride, j * stride\n"
            "                region = xp[:, r0:r0 + k, c0:c0 + k, :]\n"
            f"                out[:, i, j, m] = {_pick(rng, 'np.sum(region * w[..., m], axis=(1, 2, 3))', '(region * w[:, :, :, m]).sum(axis=(1, 2, 3))')} + b[m]\n"  # noqa: E501
            "    return out\n"
        )
    else:  # im2col: every window as a row, one matrix product
        body = (
            "    cols = []\n"
            "    for i in range(oh):\n        for j in range(ow):\n"
            "            cols.append(xp[:, i * stride:i * stride + k, j * stride:j * stride + k, :]"
            ".reshape(n, -1))\n"
            "    cols = np.stack(cols, axis=1)\n"
            "    out = "
            + _pick(rng, "cols @ w.reshape(-1, f)", "np.matmul(cols, w.reshape(-1, f))")
            + " + b\n"
            "    return out.reshape(n, oh, ow, f)\n"
        )
    return head + pad_line + dims + sizes + body


TASKS = [_zero_pad, _conv_output_size, _max_pool2d, _conv2d]


class _Renamer(ast.NodeTransformer):
    """Rename every argument and local variable (not the task functions, not ``np``)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng, self.map = rng, {}

    def _new(self, name: str) -> str:
        if name not in self.map:
            self.map[name] = f"{self.rng.choice(['v', 'tmp', 'q', 'z', 'my'])}_{len(self.map)}"
        return self.map[name]

    def visit_arg(self, node: ast.arg) -> ast.arg:
        node.arg = self._new(node.arg)
        return node

    def visit_Name(self, node: ast.Name) -> ast.Name:
        if node.id not in {"np", "range", "int", "len", "zero_pad", "conv_output_size"}:
            node.id = self._new(node.id)
        return node


def rename(code: str, rng: random.Random) -> str:
    return ast.unparse(_Renamer(rng).visit(ast.parse(code))) + "\n"


def comment(code: str, rng: random.Random) -> str:
    words = [
        "compute the result",
        "loop over the output",
        "TODO check",
        "shape first",
        "as in the lecture",
        "this took a while",
        "edge case",
    ]
    lines = []
    for line in code.splitlines():
        if rng.random() < 0.3:
            indent = line[: len(line) - len(line.lstrip())]
            lines.append(f"{indent}# {rng.choice(words)}")
        lines.append(line + (f"  # {rng.choice(words)}" if rng.random() < 0.2 else ""))
        if rng.random() < 0.15:
            lines.append("")
    return "\n".join(lines) + "\n"


def functions(code: str) -> list[str]:
    tree = ast.parse(code)
    lines = code.splitlines()
    return ["\n".join(lines[f.lineno - 1 : f.end_lineno]) + "\n" for f in tree.body]


def reorder(code: str, rng: random.Random) -> str:
    parts = functions(code)
    order = list(range(len(parts)))
    while order == sorted(order):
        rng.shuffle(order)
    return "\n".join(parts[i] for i in order)


class _Restyle(ast.NodeTransformer):
    """An independent student's own way of writing the same approach, site by site.

    At every place where correct code can be written another way, flip a coin: the operands
    of ``+`` and ``*`` in either order, ``range(n)`` or ``range(0, n)``, a tuple or a list
    for a shape. Two students who chose the same approach then still differ every few tokens,
    as people do; a copier's code does not.
    """

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def visit_BinOp(self, node: ast.BinOp) -> ast.BinOp:
        self.generic_visit(node)
        if isinstance(node.op, ast.Add | ast.Mult) and self.rng.random() < 0.5:
            node.left, node.right = node.right, node.left
        return node

    def visit_Call(self, node: ast.Call) -> ast.Call:
        self.generic_visit(node)
        if (
            isinstance(node.func, ast.Name)
            and node.func.id == "range"
            and len(node.args) == 1
            and self.rng.random() < 0.5
        ):
            node.args.insert(0, ast.Constant(0))
        for k, arg in enumerate(node.args):
            if isinstance(arg, ast.Tuple) and self.rng.random() < 0.5:
                node.args[k] = ast.List(arg.elts, ast.Load())
        return node


def restyle(code: str, rng: random.Random) -> str:
    return ast.unparse(_Restyle(rng).visit(ast.parse(code))) + "\n"


def independent(rng: random.Random) -> str:
    return "\n".join(restyle(task(rng), rng) for task in TASKS)


def make_corpus(students: int, copiers: int, seed: int):
    """Documents, the copy group of each (None: independent), the disguise of each copier."""
    rng = random.Random(seed)
    docs = {f"s{k:03d}": independent(rng) for k in range(students)}
    group = {s: None for s in docs}
    disguise = {}
    kinds = ["renamed", "commented", "reordered", "all three", "partial"]
    originals = sorted(docs)
    for k in range(copiers):
        source = rng.choice(originals)
        kind = kinds[k % len(kinds)]
        code = docs[source]
        if kind == "renamed":
            code = rename(code, rng)
        elif kind == "commented":
            code = comment(code, rng)
        elif kind == "reordered":
            code = reorder(code, rng)
        elif kind == "all three":
            code = comment(reorder(rename(code, rng), rng), rng)
        else:  # two tasks copied (renamed), two written by the copier
            parts = functions(code)
            own = functions(independent(rng))
            code = rename("\n".join(parts[:2]), rng) + "\n" + "\n".join(own[2:])
        name = f"c{k:03d}"
        docs[name] = code
        group[source] = group[source] or source
        group[name] = group[source]
        disguise[name] = kind
    return docs, group, disguise


def run(students: int, copiers: int, seed: int) -> tuple[float, float]:
    """Print the figures of one generated class; return its precision and recall."""
    docs, group, disguise = make_corpus(students, copiers, seed)
    truth = {
        frozenset((a, b))
        for a, b in itertools.combinations(sorted(docs), 2)
        if group[a] is not None and group[a] == group[b]
    }
    cpu = resource.getrusage(resource.RUSAGE_SELF).ru_utime
    wall = time.perf_counter()
    pairs = find_similar(docs, TEMPLATE)
    wall = time.perf_counter() - wall
    cpu = resource.getrusage(resource.RUSAGE_SELF).ru_utime - cpu
    found = {frozenset((p.a, p.b)) for p in pairs}
    hits = found & truth
    precision = len(hits) / len(found) if found else float("nan")
    recall = len(hits) / len(truth) if truth else float("nan")
    n_pairs = len(docs) * (len(docs) - 1) // 2
    print(
        f"seed {seed}: {len(docs)} documents ({students} independent, {copiers} copiers), "
        f"{n_pairs} pairs, {len(truth)} true-copy pairs"
    )
    print(f"  listed pairs:  {len(found)} (threshold {THRESHOLD})")
    print(f"  precision:     {precision:.3f}  ({len(hits)} of {len(found)} listed are copies)")
    print(f"  recall:        {recall:.3f}  ({len(hits)} of {len(truth)} copy pairs listed)")
    for kind in ["renamed", "commented", "reordered", "all three", "partial"]:
        mine = {t for t in truth if any(disguise.get(s) == kind for s in t)}
        if mine:
            print(
                f"    recall, {kind:<10} {len(mine & found) / len(mine):.3f}"
                f"  ({len(mine & found)} of {len(mine)})"
            )
    scores = {frozenset((p.a, p.b)): p.score for p in pairs}
    for pair in sorted(found - truth, key=sorted)[:3]:
        print(f"    false lead: {' & '.join(sorted(pair))} (score {scores[pair]:.2f})")
    print(
        f"  time:          {wall:.2f} s wall, {cpu:.2f} CPU-s "
        f"({1000 * cpu / n_pairs:.2f} CPU-ms per pair)"
    )
    return precision, recall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--students", type=int, default=60, help="independent students")
    parser.add_argument("--copiers", type=int, default=20, help="students who copy")
    parser.add_argument("--seeds", type=int, nargs="+", default=[7, 8, 9])
    args = parser.parse_args()
    figures = [run(args.students, args.copiers, seed) for seed in args.seeds]
    precision = sum(p for p, _ in figures) / len(figures)
    recall = sum(r for _, r in figures) / len(figures)
    print(f"mean over {len(figures)} classes: precision {precision:.3f}, recall {recall:.3f}")


if __name__ == "__main__":
    main()
