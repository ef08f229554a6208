"""Similarity check of a class's answers: pairs that look alike, for a human to look at.

Built on `copydetect <https://github.com/blingenf/copydetect>`_, which implements the
winnowing fingerprints of MOSS (Schleimer, Wilkerson and Aiken, SIGMOD 2003): each answer is
tokenised with Pygments, every name becomes ``V``/``F``, strings ``S``, comments and
whitespace are dropped, and the hashes of all ``k``-character substrings of what is left are
the document's fingerprints. Two students share code where they share fingerprints, so
renamed variables, added comments and reordered functions change nothing.

What is compared: the answer cells only (one per task, found as the grader finds them),
never the notebook's prose or outputs. What never counts as shared:

- the template's given code (the setup cell's imports and the stub of each task cell):
  its fingerprints are copydetect's *boilerplate*;
- code that a large part of the class wrote the same way (a fingerprint found in more than
  ``common`` submissions, like MOSS's ``-m``): a short correct answer that most students
  write identically is not evidence of copying.

Pairs are ranked: identical answers first (the same code after stripping blank lines and
trailing spaces), then by the larger of the two overlap fractions. A pair is a *lead*: two
students may share an idea from the same lecture; the page says so.

Choices: all k-gram hashes are kept (window 1) rather than winnowed, because copydetect hashes
with Python's ``hash``, which is salted per process; winnowing would keep a different subset
of fingerprints at each run and the ranking would change between runs. Answer cells are
short, so keeping all hashes costs little (see ``bench/similarity_bench.py``).

Examples
--------
>>> docs = {"ana": "def f(x):\\n    total = 0\\n    for v in x:\\n        total += v * v\\n"
...                "    return total\\n",
...         "ben": "def f(values):\\n    # sum of squares\\n    acc = 0\\n"
...                "    for item in values:\\n        acc += item * item\\n    return acc\\n",
...         "cy": "def f(x):\\n    return sum(map(lambda t: t ** 2, x))\\n"}
>>> [(p.a, p.b, round(p.score, 2)) for p in find_similar(docs, k=10, min_shared=10)]
[('ana', 'ben', 1.0)]
"""

from __future__ import annotations

import html
import io
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from copydetect.detector import CodeFingerprint, compare_files
from copydetect.utils import highlight_overlap

from cnncourse.grading.assignment import Assignment
from cnncourse.grading.submission import (
    MAX_BYTES,
    SubmissionError,
    extract_answers,
    read_bytes,
    read_notebook,
)

__all__ = ["Pair", "answer_documents", "find_similar", "template_code"]

K = 25  # characters of filtered code per fingerprint (copydetect's default noise threshold)
THRESHOLD = 0.7  # the larger overlap fraction from which a pair is listed (see the bench)
MIN_SHARED = 40  # characters of filtered code a pair must share to be listed


@dataclass
class Pair:
    """Two students' answers that look alike."""

    a: str
    b: str
    score_a: float  # fraction of a's fingerprinted code found in b's
    score_b: float
    shared: int  # characters of filtered code in common
    identical: bool
    code_a: str  # HTML: a's answers, escaped, shared parts in <mark>
    code_b: str

    @property
    def score(self) -> float:
        """The larger of the two overlap fractions."""
        return max(self.score_a, self.score_b)


def _normalise(code: str) -> str:
    return "\n".join(line.rstrip() for line in code.splitlines() if line.strip())


def template_code(assignment: Assignment) -> str:
    """The code a student is given: the setup imports and every task cell's stub."""
    return "\n".join([assignment.preamble, *(t.template_source for t in assignment.tasks)])


def answer_documents(
    paths: dict[str, Path], assignment: Assignment, max_bytes: int = MAX_BYTES
) -> dict[str, str]:
    """Each student's answer cells, in task order, each headed by a comment with its task id.

    Unreadable notebooks are left out (the gradebook already says why). Nothing is run.
    """
    docs = {}
    for student, path in paths.items():
        try:
            cells, _ = read_notebook(read_bytes(Path(path), max_bytes))
        except (SubmissionError, OSError):
            continue
        sources = extract_answers(cells, assignment.functions).sources
        parts = [f"# {t.id}\n{sources[t.id]}" for t in assignment.tasks if t.id in sources]
        docs[student] = "\n\n".join(parts) + "\n"
    return docs


def _mask_given(code: str, given: set[str]) -> str:
    """Turn every line the template gave (signatures, docstrings, imports) into a comment.

    Comments are dropped before fingerprinting, so given lines never count as shared, nor do
    fingerprints that straddle a given line and the student's first line of code.
    """
    lines = []
    for line in code.splitlines():
        stripped = line.strip()
        if stripped and stripped in given and not stripped.startswith("#"):
            line = line[: len(line) - len(line.lstrip())] + "# " + stripped
        lines.append(line)
    return "\n".join(lines) + "\n"


def _fingerprint(code: str, boilerplate: np.ndarray | None, k: int) -> CodeFingerprint:
    # The file name only tells Pygments the language; nothing is read from disk.
    return CodeFingerprint("answer.py", k, 1, boilerplate=boilerplate, fp=io.StringIO(code))


def find_similar(
    docs: dict[str, str],
    template: str = "",
    *,
    k: int = K,
    threshold: float = THRESHOLD,
    min_shared: int = MIN_SHARED,
    common: int | None = None,
) -> list[Pair]:
    """Pairs of documents that share code, identical ones first, then most similar first.

    Parameters
    ----------
    docs : dict
        Student id -> code.
    template : str
        Code every student was given; it never counts as shared.
    k : int
        Length of a fingerprint in characters of filtered code (noise threshold).
    threshold : float
        Smallest overlap fraction (the larger of the pair's two) for a pair to be listed.
    min_shared : int
        Smallest amount of shared filtered code for a pair to be listed.
    common : int, optional
        A fingerprint found in more than ``common`` documents is ignored; by default
        ``max(10, a quarter of the class)`` (MOSS's default is 10).
    """
    empty = np.array([], dtype=np.int64)
    given = {line.strip() for line in template.splitlines() if line.strip()}
    docs = {s: _mask_given(code, given) for s, code in docs.items()}
    base = _fingerprint(template, None, k).hashes if template.strip() else set()
    stub = _normalise(template)
    prints = {
        s: _fingerprint(code, np.array(sorted(base)) if base else empty, k)
        for s, code in docs.items()
    }
    limit = common if common is not None else max(10, math.ceil(len(docs) / 4))
    counts = Counter(h for fp in prints.values() for h in fp.hashes)
    frequent = np.array(sorted(h for h, n in counts.items() if n > limit), dtype=np.int64)
    if len(frequent):
        boiler = np.union1d(np.array(sorted(base), dtype=np.int64), frequent)
        prints = {s: _fingerprint(code, boiler, k) for s, code in docs.items()}
    names = sorted(docs)
    pairs = []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            na, nb = _normalise(docs[a]), _normalise(docs[b])
            identical = bool(na) and na == nb and na != stub and bool(prints[a].hashes)
            fa, fb = prints[a], prints[b]
            if not fa.hashes or not fb.hashes:
                continue
            shared, (sa, sb), (slices_a, slices_b) = compare_files(fa, fb)
            if not identical and (max(sa, sb) < threshold or shared < min_shared):
                continue
            pairs.append(
                Pair(
                    a,
                    b,
                    float(sa),
                    float(sb),
                    int(shared),
                    identical,
                    _highlight(docs[a], slices_a),
                    _highlight(docs[b], slices_b),
                )
            )
    pairs.sort(key=lambda p: (not p.identical, -p.score, -p.shared, p.a, p.b))
    return pairs


def _highlight(code: str, slices: np.ndarray) -> str:
    """``code`` escaped for HTML with the shared slices in ``<mark>``."""
    slices = np.asarray(slices)
    if slices.ndim != 2 or slices.shape[1] == 0:
        return html.escape(code)
    marked, _ = highlight_overlap(code, slices.astype(int), "<mark>", "</mark>", escape_html=True)
    return marked
