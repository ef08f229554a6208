"""Tasks of exercise 11, "Beyond classification" (chapter 10).

Four NumPy functions of dense prediction, graded against :mod:`cnncourse.dense` (which
``tests/test_dense.py`` checks against TensorFlow, Keras and scikit-learn), and one model:

- ``ex11.iou``: IoU of two boxes ``(y_min, x_min, y_max, x_max)``. The cases include boxes
  apart in *both* directions, where an intersection that is not clamped at zero comes out
  positive (negative height times negative width), and boxes that only touch.
- ``ex11.non_max_suppression``: greedy NMS, the kept indices best first. One case is a
  chain ``a`` ~ ``b`` ~ ``c`` in which ``b`` is suppressed by ``a``, so ``c``, which only
  overlaps ``b``, must be kept: comparing with every candidate instead of the kept boxes
  fails it.
- ``ex11.transposed_conv_output_size``: ``(n - 1) * stride - 2 * pad + k + output_pad``.
- ``ex11.dice``: Dice of two boolean masks, 1 when both are empty.
- ``ex11.train_segmenter``: the trained model itself, on the ``ARTIFACTS`` route as in
  ex04. The worker saves the returned model as a ``.keras`` file; :func:`evaluate_segmenter`
  loads it with ``safe_mode=True`` in a fresh process and measures the mean IoU over the
  three object classes on generated 48×48 scenes, a size the training images (24×24) never
  have: only a fully convolutional model can pass. The hidden case renames the object
  classes with a random permutation (squares labelled as discs, say) in the training and the
  held-out label maps alike, so a model brought along from elsewhere fails.

The held-out scenes are generated in the evaluator's process from a seed that travels in the
case's ``expected`` part, which the grader never sends to the student's process.

Calibration (``tests/test_tasks_ex11.py`` re-measures the public case): the reference
solution, a two-level U-Net of 16/32/32 filters trained for :data:`EPOCHS` epochs with batch
16 on :data:`TRAIN_SCENES` scenes of :data:`TRAIN_SIZE` × :data:`TRAIN_SIZE` pixels, reached
a mean object IoU between 0.96 and 0.995 on held-out 48×48 scenes over eight seeds, in about
11 CPU-seconds per training (and prediction) on 2 cores; :data:`TARGET` = 0.75 lies well
below. The scenes are 24×24 rather than 32×32 (the chapter's size) so that grading takes
seconds, not a minute (the grading issue asks for at most 10 s per Keras submission): a
32×32 scene costs 16/9 as much per epoch. Less data or fewer epochs are not safe: the network
first learns "shape or background" and only later which shape; 500 scenes for 10 epochs left
one seed of six at 0.48, 800 scenes for 8 epochs one of eight at 0.76, and with 32×32 scenes
6 epochs left one seed of four at 0.48. Untrained, a model stays near 0.

Grading needs TensorFlow in the child: :data:`GRADING_LIMITS` as in ex04, with 300 s per
task: the model task trains three times (about 25 CPU-seconds in all), and one solved
notebook took 158 s to grade on a shared 2-core machine at load average 14 when the scenes
were 32×32.
"""

from __future__ import annotations

import numpy as np

from cnncourse import dense
from cnncourse.exercise import ArtifactSpec, Case, Exercise, Mistake, Task
from cnncourse.tasks.saved_models import first_line, judge_returned_model, judge_saved_file

#: The model task: training data, held-out data and the bar to clear.
TRAIN_SIZE = 24
TRAIN_SCENES = 1000
EPOCHS = 10
HELD_OUT_SIZE = 48
HELD_OUT_SCENES = 200
HELD_OUT_OBJECTS = 5
TARGET = 0.75
NUM_CLASSES = 4
SMALL_SCENES = 64  # the cheap run whose saved model is checked for shape and probabilities
PUBLIC_TRAIN_SEED = 1101
PUBLIC_HELD_OUT_SEED = 1102

#: Limits this exercise needs in the grader (TensorFlow trains in the child), as ex04's.
GRADING_LIMITS = {"memory_mb": 4096, "timeout_s": 300.0, "nproc": 512}

#: The trained model comes back as a ``.keras`` file and is judged in a fresh process.
ARTIFACTS = {
    "ex11.train_segmenter": ArtifactSpec(
        suffix=".keras", evaluator="cnncourse.tasks.ex11:evaluate_segmenter", timeout_s=120.0
    ),
}


# --------------------------------------------------------------------------- iou


def _iou_case(name: str, a: tuple, b: tuple) -> Case:
    return Case(name, (a, b), expected=dense.iou(a, b))


def _iou_public() -> list[Case]:
    return [
        _iou_case(
            "the chapter's example: (0, 0, 4, 4) and (1, 2, 5, 6)", (0, 0, 4, 4), (1, 2, 5, 6)
        ),
        _iou_case("identical boxes", (2.0, 3.0, 7.5, 9.0), (2.0, 3.0, 7.5, 9.0)),
        _iou_case("one box inside the other", (0, 0, 10, 10), (2, 3, 5, 8)),
        _iou_case("apart in both directions (no overlap)", (0, 0, 2, 2), (5, 6, 8, 9)),
        _iou_case("boxes that only share an edge", (0, 0, 4, 4), (0, 4, 4, 8)),
        _iou_case("fractional coordinates", (0.5, 1.25, 3.5, 4.0), (1.0, 0.0, 2.5, 2.75)),
    ]


def _random_box(rng: np.random.Generator, size: float = 20.0) -> tuple[float, ...]:
    y, x = rng.uniform(0, size, 2)
    h, w = rng.uniform(0.5, size / 2, 2)
    return tuple(round(float(v), 3) for v in (y, x, y + h, x + w))


def _iou_hidden(rng: np.random.Generator) -> list[Case]:
    cases = []
    for k in range(10):
        a = _random_box(rng)
        if k in (0, 5):  # far apart in both directions
            b = tuple(v + 40.0 for v in _random_box(rng))
        else:
            b = _random_box(rng, size=12.0)
        cases.append(_iou_case(f"boxes {a} and {b}", a, b))
    return cases


# --------------------------------------------------------------------------- NMS


def _nms_case(name: str, boxes: np.ndarray, scores: np.ndarray, threshold: float) -> Case:
    kept = dense.non_max_suppression(boxes, scores, threshold)
    return Case(name, (boxes, scores, threshold), expected=[int(i) for i in kept])


def compare_indices(expected: list[int], got: object) -> str | None:
    """Kept indices: a list, tuple or 1-D array of integers, in the expected order."""
    if isinstance(got, np.ndarray):
        if got.ndim != 1:
            return f"expected a 1-D list of indices, got an array of shape {got.shape}"
        got = got.tolist()
    if not isinstance(got, list | tuple):
        return f"expected a list of box indices, got {type(got).__name__}"
    if not all(isinstance(i, int | np.integer) and not isinstance(i, bool) for i in got):
        return "expected the indices as integers (positions in `boxes`), not boxes or scores"
    got = [int(i) for i in got]
    if got == expected:
        return None
    if sorted(got) == sorted(expected):
        return f"the right boxes in the wrong order: expected {expected}, got {got} (best first)"
    missing = sorted(set(expected) - set(got))
    extra = sorted(set(got) - set(expected))
    parts = []
    if missing:
        parts.append(
            f"box(es) {missing} should be kept (suppress only by boxes you keep, and only "
            "above the threshold)"
        )
    if extra:
        parts.append(f"box(es) {extra} should have been suppressed")
    return f"expected {expected}, got {got}: " + "; ".join(parts)


def _nms_public() -> list[Case]:
    example = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [0, 2, 10, 12], [20, 20, 30, 30]], float)
    scores = np.array([0.9, 0.8, 0.7, 0.6])
    chain = np.array([[0, 0, 10, 10], [0, 3, 10, 13], [0, 6, 10, 16]], float)
    unsorted = np.array([[20, 20, 30, 30], [0, 0, 10, 10], [1, 1, 11, 11], [40, 0, 50, 8]], float)
    return [
        _nms_case("the chapter's four boxes, threshold 0.5", example, scores, 0.5),
        _nms_case("the same boxes, threshold 0.7 (keeps more)", example, scores, 0.7),
        _nms_case(
            "a chain: box 1 overlaps 0 and 2, but 0 and 2 do not overlap",
            chain,
            np.array([0.9, 0.8, 0.7]),
            0.4,
        ),
        _nms_case(
            "scores not in order: the best box is not the first",
            unsorted,
            np.array([0.3, 0.6, 0.95, 0.5]),
            0.5,
        ),
        _nms_case("no boxes at all", np.zeros((0, 4)), np.zeros(0), 0.5),
    ]


def _nms_hidden(rng: np.random.Generator) -> list[Case]:
    cases = []
    for _ in range(10):
        n = int(rng.integers(6, 16))
        boxes = np.array([_random_box(rng, size=25.0) for _ in range(n)])
        scores = np.round(rng.permutation(n) / n + 0.01, 4)
        threshold = round(float(rng.uniform(0.2, 0.7)), 2)
        cases.append(
            _nms_case(f"{n} random boxes, threshold {threshold}", boxes, scores, threshold)
        )
    return cases


# --------------------------------------------------------------------------- transposed conv size


def _size_case(n: int, k: int, stride: int, pad: int, output_pad: int) -> Case:
    return Case(
        f"n={n}, k={k}, stride={stride}, pad={pad}, output_pad={output_pad}",
        (n, k, stride, pad, output_pad),
        expected=dense.transposed_conv_output_size(n, k, stride, pad, output_pad),
    )


def _size_public() -> list[Case]:
    return [
        _size_case(3, 3, 2, 0, 0),  # the chapter's worked example: 7
        _size_case(16, 2, 2, 0, 0),  # the U-Net's upsampling: doubles
        _size_case(3, 4, 2, 1, 0),
        _size_case(7, 3, 2, 1, 1),  # output padding picks 14 rather than 13
        _size_case(5, 5, 1, 2, 0),  # stride 1, "same": keeps the size
    ]


def _size_hidden(rng: np.random.Generator) -> list[Case]:
    cases = []
    for _ in range(10):
        n = int(rng.integers(1, 65))
        k = int(rng.integers(1, 8))
        stride = int(rng.integers(1, 5))
        pad = int(rng.integers(0, (k + 1) // 2 + 1))
        output_pad = int(rng.integers(0, stride))
        if (n - 1) * stride - 2 * pad + k + output_pad < 1:
            pad = 0
        cases.append(_size_case(n, k, stride, pad, output_pad))
    return cases


# --------------------------------------------------------------------------- dice


def _dice_case(name: str, a: np.ndarray, b: np.ndarray) -> Case:
    return Case(name, (a, b), expected=dense.dice(a, b))


def _dice_public() -> list[Case]:
    square = np.zeros((6, 8), dtype=bool)
    square[1:5, 1:5] = True
    shifted = np.roll(square, 1, axis=1)
    empty = np.zeros_like(square)
    rng = np.random.default_rng(1104)
    return [
        _dice_case("the chapter's square and the square shifted by one column", square, shifted),
        _dice_case("identical masks", square, square.copy()),
        _dice_case("masks that do not meet", square, np.roll(square, 4, axis=1)),
        _dice_case("both masks empty (defined as 1)", empty, empty.copy()),
        _dice_case("prediction empty, truth not", square, empty),
        _dice_case("random 12x10 masks", rng.random((12, 10)) < 0.4, rng.random((12, 10)) < 0.5),
    ]


def _dice_hidden(rng: np.random.Generator) -> list[Case]:
    cases = []
    for _ in range(10):
        shape = (int(rng.integers(2, 20)), int(rng.integers(2, 20)))
        p, q = rng.uniform(0.05, 0.8, 2)
        a, b = rng.random(shape) < p, rng.random(shape) < q
        cases.append(_dice_case(f"random masks of shape {shape}", a, b))
    return cases


# --------------------------------------------------------------------------- train_segmenter


def _training_scenes(n: int, seed: int, label_map: np.ndarray | None = None):
    from cnncourse.scenes import make_scenes

    data = make_scenes(n, TRAIN_SIZE, seed=seed)
    masks = data.masks if label_map is None else label_map[data.masks]
    return np.array(data.images), np.array(masks, dtype=np.uint8)


def _judge_shape(model) -> str | None:
    probe = np.random.default_rng(0).random((2, 40, 24, 1)).astype(np.float32)
    try:
        out = np.asarray(model.predict(probe, verbose=0))
    except Exception as exc:
        return (
            "the model could not be run on images of 40x24 pixels: a segmenter must accept any "
            "size divisible by 4, so start it with keras.Input(shape=(None, None, 1)) and use no "
            f"Flatten or Dense layer ({first_line(exc)})"
        )
    if out.shape != (2, 40, 24, NUM_CLASSES):
        return (
            f"for 2 images of 40x24 pixels the output should have shape (2, 40, 24, "
            f"{NUM_CLASSES}), one probability per class and pixel, got {out.shape}"
        )
    if not np.all(np.isfinite(out)) or not np.allclose(out.sum(axis=-1), 1.0, atol=1e-3):
        return "the outputs of a pixel should be probabilities that sum to 1: end with a softmax"
    return None


def _judge_iou(model, expected: dict) -> str | None:
    from cnncourse.scenes import make_scenes

    data = make_scenes(
        int(expected["n"]),
        int(expected["size"]),
        max_objects=HELD_OUT_OBJECTS,
        seed=int(expected["seed"]),
    )
    label_map = np.asarray(expected["label_map"], dtype=np.int64)
    truth = label_map[data.masks]
    try:
        probs = np.asarray(model.predict(data.images, batch_size=50, verbose=0))
    except Exception as exc:
        return (
            f"the grader could not run your model on {len(truth)} scenes of "
            f"{expected['size']}x{expected['size']} pixels ({first_line(exc)}): start it with "
            "keras.Input(shape=(None, None, 1)) and use no Flatten or Dense layer"
        )
    if probs.shape != (*truth.shape, NUM_CLASSES):
        return (
            f"for {len(truth)} scenes of {expected['size']}x{expected['size']} pixels the "
            f"output should have shape {(*truth.shape, NUM_CLASSES)}, got {probs.shape}"
        )
    if not np.all(np.isfinite(probs)):
        return "the model outputs NaN or infinity (did the training diverge?)"
    iou, _ = dense.per_class_scores(truth, probs.argmax(axis=-1), NUM_CLASSES)
    mean_iou = float(np.nanmean(iou[1:]))
    target = float(expected["target"])
    if mean_iou >= target:
        return None
    per_class = ", ".join(f"{v:.2f}" for v in iou[1:])
    hint = (
        "is the model trained on the masks it is given, with sparse categorical "
        "cross-entropy, for the given number of epochs?"
        if mean_iou < 0.5
        else "train for the given number of epochs with batch size 16 and Adam at 0.003"
    )
    return (
        f"mean IoU of the object classes on {len(truth)} held-out scenes: {mean_iou:.2f} "
        f"(per class {per_class}), at least {target:.2f} needed: {hint}"
    )


def _judge_model(model, expected: dict) -> str | None:
    if expected["check"] == "shape":
        return _judge_shape(model)
    return _judge_iou(model, expected)


def judge_saved_segmenter(path: str, expected: dict) -> str | None:
    """Load a saved ``.keras`` file safely and judge it; ``None`` when it passes.

    Used by the grader (through :func:`evaluate_segmenter`, in a fresh process) and by the
    notebook's self-check (on a file saved from the returned model), so both agree.
    """
    return judge_saved_file(path, expected, _judge_model)


def evaluate_segmenter(path: str, case: Case) -> str | None:
    """The grader's evaluator for ``ex11.train_segmenter`` (:mod:`cnncourse.grading.artifacts`)."""
    return judge_saved_segmenter(path, case.expected)


def compare_segmenter(expected: dict, got: object) -> str | None:
    """The self-check: save the returned model as the grader's worker does, then judge the file."""
    return judge_returned_model(got, expected, _judge_model, function="train_segmenter")


def _held_out(seed: int, label_map: np.ndarray) -> dict:
    return {
        "check": "iou",
        "size": HELD_OUT_SIZE,
        "n": HELD_OUT_SCENES,
        "seed": int(seed),
        "label_map": [int(v) for v in label_map],
        "target": TARGET,
    }


def _train_public() -> list[Case]:
    identity = np.arange(NUM_CLASSES)
    x, y = _training_scenes(TRAIN_SCENES, PUBLIC_TRAIN_SEED)
    return [
        Case(
            f"1 epoch on {SMALL_SCENES} scenes: the saved model gives every pixel of an image "
            "of any size (here 40x24) a probability per class",
            (x[:SMALL_SCENES], y[:SMALL_SCENES], 1, 0),
            expected={"check": "shape"},
        ),
        Case(
            f"{EPOCHS} epochs on {TRAIN_SCENES:,} scenes of {TRAIN_SIZE}x{TRAIN_SIZE}: mean IoU "
            f"of the object classes at least {TARGET} on {HELD_OUT_SCENES} held-out scenes of "
            f"{HELD_OUT_SIZE}x{HELD_OUT_SIZE}",
            (x, y, EPOCHS, 0),
            expected=_held_out(PUBLIC_HELD_OUT_SEED, identity),
        ),
    ]


def _train_hidden(rng: np.random.Generator) -> list[Case]:
    renamed = rng.permutation(np.arange(1, NUM_CLASSES))
    while np.array_equal(renamed, np.arange(1, NUM_CLASSES)):
        renamed = rng.permutation(np.arange(1, NUM_CLASSES))
    label_map = np.concatenate([[0], renamed]).astype(np.uint8)
    x, y = _training_scenes(TRAIN_SCENES, int(rng.integers(10_000, 2**31 - 1)), label_map)
    return [
        Case(
            f"{EPOCHS} epochs on {TRAIN_SCENES:,} other scenes whose object classes are "
            f"renamed: mean IoU at least {TARGET} on held-out scenes, renamed the same way",
            (x, y, EPOCHS, int(rng.integers(0, 2**31 - 1))),
            expected=_held_out(int(rng.integers(10_000, 2**31 - 1)), label_map),
        )
    ]


_CHAPTER = "chapters/10_beyond_classification.html"


def iou_reference(box_a, box_b):
    """A self-contained IoU: what the grader uses in place of a wrong ``iou`` in task 2."""
    ay0, ax0, ay1, ax1 = (float(v) for v in box_a)
    by0, bx0, by1, bx1 = (float(v) for v in box_b)
    inter = max(0.0, min(ay1, by1) - max(ay0, by0)) * max(0.0, min(ax1, bx1) - max(ax0, bx0))
    union = (ay1 - ay0) * (ax1 - ax0) + (by1 - by0) * (bx1 - bx0) - inter
    return inter / union if union > 0 else 0.0


def _unclamped_iou(box_a, box_b) -> float:
    ay0, ax0, ay1, ax1 = (float(v) for v in box_a)
    by0, bx0, by1, bx1 = (float(v) for v in box_b)
    inter = (min(ay1, by1) - max(ay0, by0)) * (min(ax1, bx1) - max(ax0, bx0))
    union = (ay1 - ay0) * (ax1 - ax0) + (by1 - by0) * (bx1 - bx0) - inter
    return inter / union if union else 0.0


def _nms_against_all(boxes, scores, iou_threshold) -> list[int]:
    order = np.argsort(-np.asarray(scores, dtype=float), kind="stable")
    return [
        int(i)
        for k, i in enumerate(order)
        if all(iou_reference(boxes[i], boxes[j]) <= iou_threshold for j in order[:k])
    ]


TASKS = [
    Task(
        "ex11.iou",
        2,
        "intersection over union of two boxes",
        _iou_public,
        _iou_hidden,
        chapter=f"{_CHAPTER}#detection-boxes-iou-and-non-maximum-suppression",
        mistakes=(
            Mistake(
                "unclamped_intersection",
                "boxes apart in both directions give a negative height and a negative width, "
                "whose product is positive: clamp each at 0 before multiplying",
                _unclamped_iou,
            ),
        ),
        reference=iou_reference,
    ),
    Task(
        "ex11.non_max_suppression",
        3,
        "greedy non-maximum suppression",
        _nms_public,
        _nms_hidden,
        comparator=compare_indices,
        chapter=f"{_CHAPTER}#detection-boxes-iou-and-non-maximum-suppression",
        calls=("ex11.iou",),
        mistakes=(
            Mistake(
                "suppressed_boxes_suppress",
                "a box is dropped only by boxes you keep; you compared it with every "
                "better-scored box, also those already suppressed",
                _nms_against_all,
            ),
        ),
        pure=True,
    ),
    Task(
        "ex11.transposed_conv_output_size",
        2,
        "output length of a transposed convolution",
        _size_public,
        _size_hidden,
        chapter=f"{_CHAPTER}#upsampling-and-the-transposed-convolution",
        mistakes=(
            Mistake(
                "convolution_formula",
                "that is the size of an ordinary convolution; a transposed convolution "
                "goes the other way: (n - 1) * stride - 2 * pad + k + output_pad",
                lambda n, k, stride, pad, output_pad: (n + 2 * pad - k) // stride + 1,
            ),
            Mistake(
                "output_pad_ignored",
                "output_pad adds that many pixels at the end of the output",
                lambda n, k, stride, pad, output_pad: (n - 1) * stride - 2 * pad + k,
            ),
        ),
    ),
    Task(
        "ex11.dice",
        2,
        "Dice coefficient of two masks",
        _dice_public,
        _dice_hidden,
        chapter=f"{_CHAPTER}#measuring-a-mask-iou-and-dice",
        mistakes=(
            Mistake(
                "iou_not_dice",
                "that is the IoU, |A and B| / |A or B|; Dice is 2 |A and B| / (|A| + |B|)",
                lambda a, b: dense.mask_iou(a, b),
            ),
        ),
        pure=True,
    ),
    Task(
        "ex11.train_segmenter",
        4,
        "train a fully convolutional segmenter; graded on held-out scenes of another size",
        _train_public,
        _train_hidden,
        comparator=compare_segmenter,
        chapter=f"{_CHAPTER}#a-small-u-net",
        few_hidden="each case trains a segmenter for about 11 CPU-seconds",
    ),
]

EXERCISE = Exercise("ex11", tuple(TASKS), limits=GRADING_LIMITS, artifacts=ARTIFACTS)
