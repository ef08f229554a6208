"""A task whose answer is a trained Keras model: saved in the child, judged by the grader.

The student's function trains on data the grader sends; the grader receives only the
``.keras`` file, loads it with ``safe_mode=True`` in a fresh process and measures accuracy
on held-out images that never left the grader. A model that merely claims a high accuracy,
or one that was not trained, earns nothing.
"""

from __future__ import annotations

import json

import pytest

from cnncourse.checking import Case, Task
from cnncourse.datasets import make_shapes
from cnncourse.grading.artifacts import ArtifactSpec
from cnncourse.grading.assignment import load_assignment
from cnncourse.grading.grader import grade_file
from cnncourse.grading.sandbox import Limits, Worker

pytestmark = pytest.mark.slow

TARGET = 0.9


def evaluate_lines_model(path: str, case: Case) -> str | None:
    """Instructor side: accuracy on held-out lines, measured here, never reported by the child."""
    import keras

    model = keras.saving.load_model(path, safe_mode=True)
    held_out = make_shapes(300, noise=0.1, seed=12345)
    x = held_out.x_test.astype("float32")[..., None] / 255.0
    accuracy = float((model.predict(x, verbose=0).argmax(-1) == held_out.y_test).mean())
    if accuracy >= case.expected:
        return None
    return f"held-out accuracy {accuracy:.1%} is below the required {case.expected:.0%}"


def _cases() -> list[Case]:
    train = make_shapes(300, noise=0.1, seed=1)
    x = train.x_train.astype("float32")[..., None] / 255.0
    return [Case("train on 240 line images", (x, train.y_train.astype("int64")), expected=TARGET)]


TRAIN_ANSWER = """
def train_lines_model(x, y):
    import keras
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input(shape=x.shape[1:]),
        keras.layers.Conv2D(8, 3, activation="relu"),
        keras.layers.GlobalMaxPooling2D(),
        keras.layers.Dense(3, activation="softmax"),
    ])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=40, batch_size=32, verbose=0)
    return model
"""

UNTRAINED_ANSWER = """
def train_lines_model(x, y):
    import keras
    model = keras.Sequential([
        keras.Input(shape=x.shape[1:]),
        keras.layers.Flatten(),
        keras.layers.Dense(3, activation="softmax"),
    ])
    model.accuracy_claimed = 1.0   # a number the grader never reads
    return model
"""


def _notebook(tmp_path, name, answer, task="ex00.lines_model"):
    nb = {
        "cells": [
            {"cell_type": "code", "metadata": {}, "source": "import numpy as np"},
            {
                "cell_type": "code",
                "metadata": {"cnncourse": {"task": task, "points": 4}},
                "source": answer,
            },
        ],
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {},
    }
    path = tmp_path / name
    path.write_text(json.dumps(nb), encoding="utf-8")
    return path


def test_trained_keras_model_is_judged_on_held_out_data_by_the_grader(tmp_path):
    task = Task("ex00.lines_model", 4, "train a lines classifier", _cases)
    template = _notebook(
        tmp_path, "template.ipynb", "def train_lines_model(x, y):\n    raise NotImplementedError"
    )
    spec = ArtifactSpec(".keras", "test_grading_keras:evaluate_lines_model", timeout_s=240)
    assignment = load_assignment("ex00", template, tasks=[task], artifacts={task.id: spec})
    good = _notebook(tmp_path, "alice.ipynb", TRAIN_ANSWER)
    bad = _notebook(tmp_path, "bob.ipynb", UNTRAINED_ANSWER)
    with Worker(Limits(timeout_s=240, memory_mb=16_384, nproc=4096)) as worker:
        alice = grade_file(good, assignment, worker)
        bob = grade_file(bad, assignment, worker)
    assert alice.total == 4, alice.tasks[0]
    assert bob.total == 0, bob.tasks[0]
    assert "below the required" in bob.tasks[0].cases[0].message


def evaluate_call_number(path: str, case: Case) -> str | None:
    """Instructor side: the saved model's name says which call of the function made it."""
    import keras

    name = keras.saving.load_model(path, safe_mode=True).name
    return None if name == case.expected else f"made by {name}, expected {case.expected}"


COUNTING_ANSWER = """
CALLS = []

def make_model(n):
    import keras
    CALLS.append(n)
    return keras.Sequential(
        [keras.Input(shape=(2,)), keras.layers.Dense(n)], name=f"call{len(CALLS)}"
    )
"""


def test_cases_with_the_same_inputs_judge_one_saved_model(tmp_path):
    """ex04 judges the architecture and the accuracy of one training: the grader calls the
    student's function once for cases whose inputs are equal, and judges each case on its
    own copy of that one saved model (one evaluation process for all of them)."""

    def cases():
        return [
            Case("first look", (3,), expected="call1"),
            Case("second look at the same model", (3,), expected="call1"),
            Case("another input", (4,), expected="call2"),
        ]

    task = Task("ex00.count", 3, "count the calls", cases)
    stub = "def make_model(n):\n    raise NotImplementedError"
    template = _notebook(tmp_path, "template.ipynb", stub, task.id)
    spec = ArtifactSpec(".keras", "test_grading_keras:evaluate_call_number", timeout_s=120)
    assignment = load_assignment("ex00", template, tasks=[task], artifacts={task.id: spec})
    answer = _notebook(tmp_path, "carol.ipynb", COUNTING_ANSWER, task.id)
    with Worker(Limits(timeout_s=120, memory_mb=16_384, nproc=4096)) as worker:
        result = grade_file(answer, assignment, worker)
    cases = result.tasks[0].cases
    assert [c.passed for c in cases] == [True, True, True], [c.message for c in cases]


def test_a_model_exercise_is_graded_in_full_as_an_ordinary_user():
    """Issue 12 item 3 for the model evaluator: as a real unprivileged user (no root, the
    sandbox in a user namespace) ex04's solution gets full marks, its saved models judged in
    the sandboxed evaluator, and the gradebook says the grading was isolated."""
    import csv
    import shutil
    import sys

    from unprivileged import ROOT, as_unprivileged, shared_folder

    work = shared_folder()
    try:
        subs = work / "subs"
        subs.mkdir()
        shutil.copy(ROOT / "solutions" / "ex04_first_cnn.ipynb", subs / "ann.ipynb")
        shutil.chown(subs, *(2 * [work.stat().st_uid]))
        args = ["grade", str(subs), "-a", "ex04", "--out", str(work / "out"), "--no-progress"]
        script = f"from cnncourse.cli import main; raise SystemExit(main({args!r}))"
        proc = as_unprivileged([sys.executable, "-c", script], work)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        rows = list(csv.DictReader((work / "out" / "gradebook.csv").open(encoding="utf-8")))
        got = [(r["student_id"], r["status"], r["total"], r["isolation"]) for r in rows]
        assert got == [("ann", "ok", "10", "sandbox")], proc.stdout + proc.stderr
        page = (work / "out" / "feedback" / "ann.html").read_text(encoding="utf-8")
        assert "without isolation" not in page.lower()
    finally:
        shutil.rmtree(work, ignore_errors=True)
