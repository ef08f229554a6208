"""Tasks of exercise 9, "An inference function with input validation" (chapter 9).

Students write the gate that stands in front of a served model:

- ``check_image(image)`` returns ``None`` for a valid 28x28 greyscale image and otherwise a
  message that names the first problem found, in the order shape, dtype, range (the message
  must contain that word);
- ``preprocess(image)`` turns a valid image into the model's input, exactly the training
  preprocessing: ``float32``, shape ``(1, 28, 28, 1)``, integers divided by 255, floats
  (already in [0, 1]) unchanged; for an invalid image it raises ``ValueError``;
- ``to_response(probabilities, class_names)`` turns one probability vector into the JSON
  answer ``{"label", "class_index", "confidence"}``.

The expected outputs come from :class:`cnncourse.inference.ImageSpec`, the gate chapter 9
uses, so the exercise and the package cannot disagree (``tests/test_tasks_ex09.py`` checks
that the problem categories below match what ``ImageSpec`` refuses).

Why ``check_image`` *returns* a message instead of raising: the grader compares returned
values; a case cannot (yet) say "this input must raise ValueError". The ``ValueError`` of
``preprocess`` is therefore practised in the notebook but not graded.

The cases are chosen to catch the usual mistakes: accepting colour images or batches,
checking only ``ndim``, treating every float as 0..255 pixels (or every image as uint8),
accepting NaN, forgetting that 0 and 255 (and 0.0 and 1.0) are valid, returning float64 or
the wrong shape from ``preprocess``, and taking the *last* of two equal maxima in
``to_response``.

Each of these mistakes has a name and a hint (the ``mistakes`` of the tasks): the answer's
output is recognised -- a valid ``(28, 28, 1)`` image refused, NaN let through, integers
not divided by 255 (training and serving preprocessing disagree), floats divided twice, a
missing batch or channel axis, channels first, the last of two equal maxima -- and the
message says how to fix it. A failed hidden case names its properties ("a wrong shape",
"int32 pixels, a channel axis", "a tie between the two most probable classes"), never its
values.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cnncourse.exercise import Case, Exercise, Mistake, Task, compare
from cnncourse.inference import ImageSpec

__all__ = ["TASKS", "reference_problem"]

_SPEC = ImageSpec(28, 28, 1)
_KEYWORDS = ("shape", "dtype", "range")


def reference_problem(image: np.ndarray) -> str | None:
    """The first problem of ``image`` as one word ("shape", "dtype", "range"), or None."""
    if image.ndim not in (2, 3) or image.shape[:2] != (28, 28):
        return "shape"
    if image.ndim == 3 and image.shape[2] != 1:
        return "shape"
    kind = image.dtype.kind
    if kind not in "uif":
        return "dtype"
    if kind in "ui":
        return None if image.size == 0 or (image.min() >= 0 and image.max() <= 255) else "range"
    if not np.all(np.isfinite(image)):
        return "range"
    return None if image.min() >= 0 and image.max() <= 1 else "range"


# --------------------------------------------------------------------------- check_image


def _check_image_reference(image):
    if image.shape not in ((28, 28), (28, 28, 1)):
        return f"wrong shape: expected (28, 28) or (28, 28, 1), got {image.shape}"
    if image.dtype.kind not in "uif":
        return f"wrong dtype: expected integer or float pixels, got {image.dtype}"
    if image.dtype.kind in "ui":
        if image.min() < 0 or image.max() > 255:
            return "values out of range: expected integers in 0..255"
        return None
    if not np.isfinite(image).all() or image.min() < 0 or image.max() > 1:
        return "values out of range: expected finite floats in [0, 1]"
    return None


def _compare_problem(expected: str | None, got: Any) -> str | None:
    if expected is None:
        if got is None:
            return None
        return f"the image is valid, so expected None, got {got!r}"[:300]
    if got is None:
        return f"the image is not valid (its {expected} is wrong), but you returned None"
    if not isinstance(got, str) or not got.strip():
        return f"expected a message (a non-empty str) that mentions {expected!r}, got {got!r}"[:300]
    if expected not in got.lower():
        others = [k for k in _KEYWORDS if k != expected and k in got.lower()]
        found = ""
        if others:
            found = f" (it mentions {others[0]!r}: check shape, then dtype, then range)"
        return f"expected a message that mentions {expected!r}, got {got!r}{found}"[:400]
    return None


def _image(case: Case) -> np.ndarray:
    return case.args[0]


def _refused(case: Case, got: Any, *, because: tuple[str, ...] = _KEYWORDS) -> bool:
    """A valid image got a message that names none of the other problems than ``because``."""
    if case.expected is not None or not isinstance(got, str):
        return False
    text = got.lower()
    return not any(k in text for k in _KEYWORDS if k not in because)


def _accepted(case: Case, got: Any, problem: str) -> bool:
    """An image with ``problem`` came back as valid."""
    return case.expected == problem and got is None


def _float_pixels(image: np.ndarray) -> bool:
    return image.dtype.kind == "f" and bool(np.all(np.isfinite(image))) and image.max() > 1


def _has_edges(image: np.ndarray) -> bool:
    top = 255 if image.dtype.kind in "ui" else 1.0
    return bool(image.min() == 0 or image.max() == top)


def _mentions_later(case: Case, got: Any) -> bool:
    """The message names a problem that is checked after the one the image has."""
    if case.expected not in _KEYWORDS or not isinstance(got, str):
        return False
    text = got.lower()
    later = _KEYWORDS[_KEYWORDS.index(case.expected) + 1 :]
    return case.expected not in text and any(k in text for k in later)


_CHECK_MISTAKES = (
    Mistake(
        "wrong_order",
        "the message names another problem than the first one: check the shape first, then "
        "the dtype, then the range (a 32x32 float image is a shape problem first)",
        seen=_mentions_later,
    ),
    Mistake(
        "channel_axis_refused",
        "(28, 28, 1) is valid too (one image with its channel axis): accept both shapes, "
        "image.shape in ((28, 28), (28, 28, 1))",
        seen=lambda case, got: (
            _refused(case, got, because=("shape",)) and _image(case).shape == (28, 28, 1)
        ),
    ),
    Mistake(
        "float_refused",
        "floats already scaled to [0, 1] are valid (dtype.kind 'f'): only their range must "
        "be checked, against [0, 1] instead of 0..255",
        seen=lambda case, got: (
            _refused(case, got, because=("dtype", "range")) and _image(case).dtype.kind == "f"
        ),
    ),
    Mistake(
        "only_uint8",
        "any integer dtype is valid (int16, int64, uint16 ...), not only uint8: test "
        "image.dtype.kind in 'ui' rather than image.dtype == np.uint8",
        seen=lambda case, got: (
            case.expected != "dtype"
            and isinstance(got, str)
            and "dtype" in got.lower()
            and _image(case).dtype.kind in "ui"
            and _image(case).dtype != np.uint8
        ),
    ),
    Mistake(
        "edges_refused",
        "0 and 255 (and 0.0 and 1.0) are valid pixel values: refuse values < 0 or > 255, "
        "not <= 0 or >= 255",
        seen=lambda case, got: _refused(case, got, because=("range",)) and _has_edges(_image(case)),
    ),
    Mistake(
        "shape_too_loose",
        "the shape must be exactly (28, 28) or (28, 28, 1): checking only ndim or the number "
        "of pixels lets colour images, batches and flattened images through",
        seen=lambda case, got: _accepted(case, got, "shape"),
    ),
    Mistake(
        "bool_accepted",
        "a boolean mask is not an image: its dtype.kind is 'b'; accept only 'u', 'i' and 'f'",
        seen=lambda case, got: _accepted(case, got, "dtype"),
    ),
    Mistake(
        "nan_accepted",
        "NaN compares False with everything, so min() < 0 and max() > 1 do not catch it: "
        "refuse images where not np.isfinite(image).all()",
        seen=lambda case, got: (
            _accepted(case, got, "range") and not np.all(np.isfinite(_image(case)))
        ),
    ),
    Mistake(
        "floats_as_pixels",
        "floats are taken to be already scaled, so a float image must lie in [0, 1]; floats "
        "in 0..255 (unscaled) must be refused, not accepted or divided silently",
        seen=lambda case, got: _accepted(case, got, "range") and _float_pixels(_image(case)),
    ),
    Mistake(
        "int_range_unchecked",
        "integer pixels outside 0..255 got through: check image.min() >= 0 and "
        "image.max() <= 255 for integer images too",
        seen=lambda case, got: _accepted(case, got, "range") and _image(case).dtype.kind in "ui",
    ),
)


def _digit(rng: np.random.Generator) -> np.ndarray:
    """A uint8 28x28 image with a bright blob on a dark background, like a digit."""
    yy, xx = np.mgrid[:28, :28]
    cy, cx = rng.integers(9, 19, size=2)
    blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * rng.uniform(9, 30)))
    noise = rng.integers(0, 20, size=(28, 28))
    return np.clip(blob * 255 + noise, 0, 255).astype(np.uint8)


def _check_case(name: str, image: np.ndarray) -> Case:
    return Case(name, (image,), expected=reference_problem(image))


def _check_cases() -> list[Case]:
    rng = np.random.default_rng(90)
    digit = _digit(rng)
    full_range = digit.copy()
    full_range[0, 0], full_range[0, 1] = 0, 255
    float01 = digit / 255.0
    float01[0, 0], float01[0, 1] = 0.0, 1.0
    with_nan = float01.copy()
    with_nan[5, 5] = np.nan
    return [
        _check_case("valid: uint8 (28, 28) with values 0 and 255", full_range),
        _check_case("valid: uint8 (28, 28, 1)", digit[:, :, None]),
        _check_case("valid: float64 already scaled to [0, 1]", float01),
        _check_case("valid: int64 pixels 0..255", digit.astype(np.int64)),
        _check_case("colour image (28, 28, 3)", np.stack([digit] * 3, axis=-1)),
        _check_case("wrong size (32, 32)", _digit(rng)[:, :].repeat(2, 0)[:32, :32]),
        _check_case("a batch of one (1, 28, 28, 1)", digit[None, :, :, None]),
        _check_case("flattened (784,)", digit.ravel()),
        _check_case("boolean mask", digit > 127),
        _check_case("float64 with values 0..255 (not scaled)", digit.astype(np.float64)),
        _check_case("int64 values up to 300", digit.astype(np.int64) + 45),
        _check_case("float with a NaN", with_nan),
        _check_case("negative floats (normalised to mean 0)", float01 - 0.5),
        _check_case("wrong size AND floats 0..255: shape first", np.full((32, 32), 200.0)),
    ]


def _check_hidden(rng: np.random.Generator) -> list[Case]:
    cases = []
    kinds = [
        "valid_uint8",
        "valid_float",
        "valid_int",
        "shape",
        "dtype",
        "range_int",
        "range_float",
        "nan",
    ]
    for kind in rng.permutation(kinds * 2):
        digit = _digit(rng)
        if kind == "valid_uint8":
            image = digit if rng.random() < 0.5 else digit[:, :, None]
        elif kind == "valid_float":
            image = (digit / 255.0).astype(rng.choice(["float32", "float64"]))
        elif kind == "valid_int":
            image = digit.astype(rng.choice(["int16", "int32", "int64", "uint16"]))
        elif kind == "shape":
            options = [
                (28, 28, 3),
                (28, 28, 4),
                (1, 28, 28),
                (27, 28),
                (28, 29),
                (56, 56),
                (784,),
                (2, 28, 28, 1),
            ]
            shape = options[int(rng.integers(len(options)))]
            image = rng.integers(0, 256, size=shape).astype(np.uint8)
        elif kind == "dtype":
            image = digit > rng.integers(50, 200)
        elif kind == "range_int":
            image = digit.astype(np.int64)
            image[rng.integers(28), rng.integers(28)] = int(
                rng.choice([-int(rng.integers(1, 50)), int(rng.integers(256, 5000))])
            )
        elif kind == "range_float":
            image = digit.astype(np.float64) / float(rng.choice([1.0, 100.0, 127.5]))
            image[0, 0] = 1.5  # in case the division left everything in [0, 1]
        else:
            image = digit / 255.0
            image[rng.integers(28), rng.integers(28)] = rng.choice([np.nan, np.inf, -np.inf])
        case = _check_case(f"hidden {kind}", np.asarray(image))
        cases.append(Case(**{**case.__dict__, "tags": (_KIND_TAGS[kind],)}))
    return cases


_KIND_TAGS = {
    "valid_uint8": "a valid uint8 image",
    "valid_float": "a valid float image in [0, 1]",
    "valid_int": "a valid image of another integer dtype",
    "shape": "a wrong shape",
    "dtype": "a boolean image (a wrong dtype)",
    "range_int": "integer pixels outside 0..255",
    "range_float": "float pixels outside [0, 1]",
    "nan": "a NaN or infinite pixel",
}


# --------------------------------------------------------------------------- preprocess


def _compare_preprocessed(expected: np.ndarray, got: Any) -> str | None:
    if isinstance(got, np.ndarray) and got.dtype != np.float32:
        return f"expected a float32 array (the model's input type), got dtype {got.dtype}"
    return compare(expected, got, rtol=0, atol=1e-7)


def _pre_case(name: str, image: np.ndarray) -> Case:
    return Case(name, (image,), expected=_SPEC.preprocess(image))


def _pre_cases() -> list[Case]:
    rng = np.random.default_rng(91)
    digit = _digit(rng)
    digit[0, 0], digit[0, 1] = 0, 255
    return [
        _pre_case("uint8 (28, 28)", digit),
        _pre_case("uint8 (28, 28, 1)", _digit(rng)[:, :, None]),
        _pre_case("float64 already in [0, 1]: unchanged, as float32", digit / 255.0),
        _pre_case("int64 pixels 0..255", _digit(rng).astype(np.int64)),
        _pre_case("all 255: all ones", np.full((28, 28), 255, dtype=np.uint8)),
    ]


def _pre_hidden(rng: np.random.Generator) -> list[Case]:
    cases = []
    for i in (k % 4 for k in range(12)):
        digit = _digit(rng)
        if i == 0:
            image = digit
        elif i == 1:
            image = digit[:, :, None].astype(np.int32)
        elif i == 2:
            image = (digit / 255.0).astype(np.float32)
        else:
            image = rng.uniform(0, 1, size=(28, 28, 1))
        case = _pre_case(f"hidden {i}", image)
        cases.append(Case(**{**case.__dict__, "tags": _PRE_TAGS[i]}))
    return cases


_PRE_TAGS = {
    0: ("uint8 pixels", "no channel axis"),
    1: ("int32 pixels", "a channel axis"),
    2: ("float32 pixels already in [0, 1]", "no channel axis"),
    3: ("float64 pixels already in [0, 1]", "a channel axis"),
}


def _as_float32(image: np.ndarray, divide_ints: bool = True, divide_floats: bool = False):
    x = image.astype(np.float32)
    if (image.dtype.kind in "ui" and divide_ints) or (image.dtype.kind == "f" and divide_floats):
        x = x / np.float32(255)
    return x


_PRE_MISTAKES = (
    Mistake(
        "float64",
        "the values are right but the dtype is float64 (an integer array divided by 255 is "
        "float64): the model takes float32, finish with .astype(np.float32)",
        seen=lambda case, got: (
            isinstance(got, np.ndarray)
            and got.dtype == np.float64
            and compare(case.expected, got, rtol=1e-6, atol=1e-7) is None
        ),
    ),
    Mistake(
        "not_divided_by_255",
        "integer pixels were not divided by 255: the model was trained on values in [0, 1], "
        "so serving it 0..255 is a preprocessing mismatch between training and serving",
        lambda image: _as_float32(image, divide_ints=False).reshape(1, 28, 28, 1),
    ),
    Mistake(
        "floats_divided_again",
        "float images are already in [0, 1]: dividing them by 255 again normalises twice; "
        "divide only integer pixels (dtype.kind in 'ui')",
        lambda image: _as_float32(image, divide_floats=True).reshape(1, 28, 28, 1),
    ),
    Mistake(
        "integer_division",
        "image // 255 is an integer division: every pixel below 255 became 0; convert to "
        "float32 first, then divide",
        lambda image: (image // 255).astype(np.float32).reshape(1, 28, 28, 1),
    ),
    Mistake(
        "no_batch_axis",
        "the batch axis is missing: the model predicts on batches, so one image is "
        "(1, 28, 28, 1), not (28, 28, 1)",
        lambda image: _as_float32(image).reshape(28, 28, 1),
    ),
    Mistake(
        "no_channel_axis",
        "the channel axis is missing: Conv2D takes (batch, height, width, channels), so one "
        "greyscale image is (1, 28, 28, 1), not (1, 28, 28)",
        lambda image: _as_float32(image).reshape(1, 28, 28),
    ),
    Mistake(
        "channels_first",
        "(1, 1, 28, 28) is the channels-first (NCHW) layout of PyTorch; Keras models take "
        "channels last: (1, 28, 28, 1)",
        lambda image: _as_float32(image).reshape(1, 1, 28, 28),
    ),
)


# --------------------------------------------------------------------------- to_response


def _response(probabilities: np.ndarray, class_names: tuple[str, ...]) -> dict[str, Any]:
    i = int(np.argmax(probabilities))
    return {"label": class_names[i], "class_index": i, "confidence": float(probabilities[i])}


def _resp_case(name: str, probabilities: np.ndarray, class_names: tuple[str, ...]) -> Case:
    return Case(
        name,
        (probabilities, class_names),
        expected=_response(probabilities, class_names),
        rtol=1e-6,
        atol=1e-9,
    )


_DIGITS = tuple(str(d) for d in range(10))


def _resp_cases() -> list[Case]:
    rng = np.random.default_rng(92)
    ten = rng.dirichlet(np.ones(10)).astype(np.float32)
    return [
        _resp_case("three classes", np.array([0.2, 0.7, 0.1]), ("cat", "dog", "bird")),
        _resp_case("ten digits, float32", ten, _DIGITS),
        _resp_case("the first class wins", np.array([0.9, 0.05, 0.05]), ("yes", "no", "maybe")),
        _resp_case(
            "a tie: the first of two equal maxima", np.array([0.1, 0.45, 0.45]), ("a", "b", "c")
        ),
    ]


def _resp_hidden(rng: np.random.Generator) -> list[Case]:
    cases = []
    for k in (2, 3, 4, 5, 6, 7, 8, 10, 10, 12):
        names = tuple(f"class_{j}_{int(rng.integers(100))}" for j in range(k))
        case = _resp_case(f"hidden {k} classes", rng.dirichlet(np.ones(k)), names)
        tags = (f"{k} classes", "class names that are not their indices")
        cases.append(Case(**{**case.__dict__, "tags": tags}))
    for k in (4, 7):  # the first of two equal maxima wins
        p = rng.dirichlet(np.ones(k))
        a, b = rng.choice(k, size=2, replace=False)
        p[a] = p[b] = 1.5 * p.max()
        p = p / p.sum()
        names = tuple(f"class_{j}_{int(rng.integers(100))}" for j in range(k))
        case = _resp_case(f"hidden tie, {k} classes", p, names)
        tags = (f"{k} classes", "a tie between the two most probable classes")
        cases.append(Case(**{**case.__dict__, "tags": tags}))
    return cases


def _response_with(probabilities: np.ndarray, class_names, index: int, **changes) -> dict:
    answer = {
        "label": class_names[index],
        "class_index": int(index),
        "confidence": float(probabilities[index]),
    }
    return {**answer, **changes}


def _last_max(p: np.ndarray) -> int:
    return len(p) - 1 - int(np.argmax(p[::-1]))


_RESP_MISTAKES = (
    Mistake(
        "last_of_ties",
        "of two equal maxima you took the last; the first one wins, as np.argmax does "
        "(a loop with >= instead of > takes the last)",
        lambda p, names: _response_with(p, names, _last_max(p)),
    ),
    Mistake(
        "argmin",
        "that is the LEAST probable class: the prediction is np.argmax, not np.argmin",
        lambda p, names: _response_with(p, names, int(np.argmin(p))),
    ),
    Mistake(
        "label_is_index",
        "the label is the class's name, class_names[index], not its index",
        lambda p, names: _response_with(p, names, int(np.argmax(p)), label=int(np.argmax(p))),
    ),
    Mistake(
        "index_as_string_label",
        "the label is the class's name, class_names[index], not str(index)",
        lambda p, names: _response_with(p, names, int(np.argmax(p)), label=str(np.argmax(p))),
    ),
    Mistake(
        "confidence_percent",
        "the confidence is a probability in [0, 1], not a percentage: do not multiply by 100",
        lambda p, names: _response_with(
            p, names, int(np.argmax(p)), confidence=100 * float(np.max(p))
        ),
    ),
    Mistake(
        "probabilities_returned",
        "the confidence is the winning class's probability (one number), not the whole "
        "probability vector",
        seen=lambda case, got: (
            isinstance(got, dict) and isinstance(got.get("confidence"), np.ndarray | list | tuple)
        ),
    ),
)


TASKS = [
    Task(
        id="ex09.check_image",
        points=4,
        title="check an image: None, or what is wrong",
        public_cases=_check_cases,
        hidden_cases=_check_hidden,
        comparator=_compare_problem,
        chapter="chapters/09_production.html#an-inference-function-that-refuses-garbage",
        mistakes=_CHECK_MISTAKES,
        pure=True,
        reference=_check_image_reference,
    ),
    Task(
        id="ex09.preprocess",
        points=3,
        title="the training preprocessing for one image",
        public_cases=_pre_cases,
        hidden_cases=_pre_hidden,
        comparator=_compare_preprocessed,
        chapter="chapters/09_production.html#an-inference-function-that-refuses-garbage",
        calls=("ex09.check_image",),
        mistakes=_PRE_MISTAKES,
        pure=True,
    ),
    Task(
        id="ex09.to_response",
        points=2,
        title="probabilities to a JSON answer",
        public_cases=_resp_cases,
        hidden_cases=_resp_hidden,
        chapter="chapters/09_production.html#serving-predictions-over-http",
        mistakes=_RESP_MISTAKES,
        pure=True,
    ),
]


EXERCISE = Exercise("ex09", tuple(TASKS))
