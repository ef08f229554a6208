"""Exercise 6's cases: the references agree with Keras, and the typical mistakes fail.

The task module computes its expected answers with plain integer arithmetic (the grader
must not need TensorFlow). These tests tie that arithmetic to what Keras actually builds,
through ``cnncourse.architectures``, and pin that each mistake the task module names in its
docstring fails at least one *public* case.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import pytest

from cnncourse import architectures as arch
from cnncourse.checking import run_task
from cnncourse.models import small_vgg
from cnncourse.tasks import ex06, get_task, tasks_for
from cnncourse.tasks.keras_models import describe_block, describe_residual


def describe_vgg_block(input_shape, filters, n_convs, builder=arch.vgg_block):
    """The exercise's given describe function, around a builder (default: the course's)."""
    return describe_block(builder, input_shape, filters, n_convs)


def course_residual_block(x, filters, stride):
    return arch.residual_block(x, filters, stride, batch_norm=False)


def describe_residual_block(input_shape, filters, stride, builder=course_residual_block):
    """The exercise's given describe function, around a builder (default: the course's)."""
    return describe_residual(builder, input_shape, filters, stride)


def build_transfer_model(base, num_classes):
    """The course's answer to task 6, stage 1: frozen base, training=False, a new head."""
    base.trainable = False
    inputs = keras.Input(shape=base.input_shape[1:])
    pooled = keras.layers.GlobalAveragePooling2D()(base(inputs, training=False))
    model = keras.Model(inputs, keras.layers.Dense(num_classes, activation="softmax")(pooled))
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    return model


def unfreeze_top_block(model, base, block, learning_rate):
    """Stage 2: the block's layers trainable except batch normalisation; recompile."""
    base.trainable = True
    for layer in base.layers:
        bn = isinstance(layer, keras.layers.BatchNormalization)
        layer.trainable = layer.name.startswith(block) and not bn
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss="sparse_categorical_crossentropy")
    return model


def tiny_base(input_shape):
    """The exercise's given stand-in for a pretrained network."""
    inputs = keras.Input(shape=tuple(input_shape))
    x = inputs
    for i, filters in enumerate(ex06.TINY_BASE_FILTERS, start=1):
        x = keras.layers.Conv2D(filters, 3, padding="same", name=f"block{i}_conv")(x)
        x = keras.layers.BatchNormalization(name=f"block{i}_bn")(x)
        x = keras.layers.ReLU(name=f"block{i}_relu")(x)
        x = keras.layers.MaxPooling2D(2, name=f"block{i}_pool")(x)
    return keras.Model(inputs, x, name="tiny_base")


def describe_fine_tuning(input_shape, num_classes, block, learning_rate,
                         stage1=build_transfer_model, stage2=unfreeze_top_block):
    """The exercise's given describe function, around two builders (default: the course's)."""
    keras.utils.set_random_seed(0)
    base = tiny_base(input_shape)
    rng = np.random.default_rng(0)
    x = (3 + 5 * rng.random((8, *tuple(input_shape)))).astype("float32")
    y = rng.integers(0, num_classes, size=8)

    def size(weights):
        return int(sum(np.prod(w.shape) for w in weights))

    def snapshot():
        return {la.name: [w.copy() for w in la.get_weights()] for la in base.layers}

    def changed(before):
        return sorted(la.name for la in base.layers if any(
            not np.array_equal(a, b)
            for a, b in zip(before[la.name], la.get_weights(), strict=True)))

    model = stage1(base, num_classes)
    before = snapshot()
    model.train_on_batch(x, y)
    first = {"output_shape": list(model.output.shape[1:]),
             "trainable": size(model.trainable_weights),
             "non_trainable": size(model.non_trainable_weights),
             "base_changed": bool(changed(before))}
    model = stage2(model, base, block, learning_rate)
    before = snapshot()
    model.train_on_batch(x, y)
    bns = [la for la in base.layers if isinstance(la, keras.layers.BatchNormalization)]
    second = {"trainable": size(model.trainable_weights),
              "non_trainable": size(model.non_trainable_weights),
              "changed_layers": [n for n in changed(before) if n.startswith("block")],
              "bn_statistics_updated": any(
                  not np.array_equal(before[la.name][2], la.get_weights()[2]) for la in bns),
              "learning_rate": float(np.float32(keras.ops.convert_to_numpy(
                  model.optimizer.learning_rate)))}
    return {"feature_extraction": first, "fine_tuning": second}


REFERENCE = {
    "ex06.vgg_block_params": ex06._vgg_block_params,
    "ex06.vgg_block": describe_vgg_block,
    "ex06.vgg_params": ex06._vgg_params,
    "ex06.separable_savings": ex06._separable_savings,
    "ex06.residual_block": describe_residual_block,
    "ex06.fine_tuning": describe_fine_tuning,
}
KERAS_TASKS = ("ex06.vgg_block", "ex06.residual_block")


def _fails(task_id: str, fn) -> list[str]:
    report = run_task(task_id, fn)
    assert not report.passed, f"{task_id}: a wrong answer passed every public case"
    return [r.message for r in report.results if not r.passed]


def test_the_registry_has_six_tasks_worth_thirteen_points():
    tasks = tasks_for("ex06")
    assert [t.id for t in tasks] == list(REFERENCE)
    assert sum(t.points for t in tasks) == 13


@pytest.mark.parametrize("task_id", list(REFERENCE))
def test_references_pass_public_and_hidden_cases(task_id):
    task = get_task(task_id)
    assert run_task(task_id, REFERENCE[task_id]).passed
    # The fine-tuning cases train a model each (seconds): fewer seeds keep the test cheap.
    for seed in range(2 if task_id == "ex06.fine_tuning" else 5):
        report = run_task(task_id, REFERENCE[task_id],
                          cases=task.hidden_cases(np.random.default_rng(seed)))
        assert report.passed, report.to_text()


@pytest.mark.parametrize("task_id", list(REFERENCE))
def test_hidden_cases_are_reproducible_and_vary(task_id):
    task = get_task(task_id)
    a = task.hidden_cases(np.random.default_rng(3))
    b = task.hidden_cases(np.random.default_rng(3))
    c = task.hidden_cases(np.random.default_rng(4))
    assert [x.args for x in a] == [x.args for x in b]
    assert [x.args for x in a] != [x.args for x in c]


# --------------------------------------------------------------------------- against Keras
# The references of the two builder tasks above *are* Keras (the course's blocks, described
# by the exercise's given functions), so test_references_pass_public_and_hidden_cases
# already ties the task module's arithmetic to what Keras builds. The tests below do the
# same for the arithmetic tasks.


def test_block_params_match_the_keras_block():
    for case in get_task("ex06.vgg_block_params").public_cases():
        c_in, filters, n_convs = case.args
        inputs = keras.Input(shape=(8, 8, c_in))
        block = keras.Model(inputs, arch.vgg_block(inputs, filters, n_convs))
        assert block.count_params() == case.expected


def test_grading_limits_let_tensorflow_load():
    from cnncourse.grading.assignment import grading_limits

    limits = grading_limits("ex06")
    assert limits.memory_mb >= 3072 and limits.timeout_s >= 60


def test_vgg_params_cases_match_keras_models():
    cases = {c.name: c for c in get_task("ex06.vgg_params").public_cases()}
    vgg16, vgg16_32, digits, odd = cases.values()
    assert vgg16.expected == keras.applications.VGG16(weights=None).count_params()
    assert vgg16_32.expected == arch.vgg16(input_shape=(32, 32, 3), classes=10).count_params()
    assert digits.expected == small_vgg((28, 28, 1), 10).count_params()
    shape, blocks, dense, classes = odd.args
    x = inputs = keras.Input(shape=shape)
    for b, (filters, n_convs) in enumerate(blocks, start=1):
        x = arch.vgg_block(x, filters, n_convs, name=f"block{b}")
    x = keras.layers.Flatten()(x)
    for units in (*dense, classes):
        x = keras.layers.Dense(units)(x)
    assert odd.expected == keras.Model(inputs, x).count_params()


def test_separable_cases_match_keras_and_the_chapter_formula():
    for case in get_task("ex06.separable_savings").public_cases():
        k, c_in, c_out, h, w = case.args
        x = keras.Input(shape=(h, w, c_in))
        std = keras.Model(x, keras.layers.Conv2D(c_out, k, padding="same", use_bias=False)(x))
        sep = keras.Model(
            x, keras.layers.SeparableConv2D(c_out, k, padding="same", use_bias=False)(x))
        exp = case.expected
        assert exp["standard_params"] == std.count_params()
        assert exp["separable_params"] == sep.count_params()
        assert exp["standard_macs"] == arch.model_macs(std) == arch.conv_macs(k, c_in, c_out, h, w)
        assert exp["separable_macs"] == arch.model_macs(sep)
        assert exp["mac_ratio"] == pytest.approx(1 / c_out + 1 / k**2)


# --------------------------------------------------------------------------- typical mistakes


def test_block_params_without_biases_fails():
    assert _fails("ex06.vgg_block_params", lambda c, f, n: 9 * c * f + (n - 1) * 9 * f * f)


def test_block_params_with_c_in_everywhere_fails():
    assert _fails("ex06.vgg_block_params", lambda c, f, n: n * (9 * c + 1) * f)


def _vgg_builder(padding="same", activation="relu", pool_padding="valid"):
    def build(x, filters, n_convs):
        for _ in range(n_convs):
            x = keras.layers.Conv2D(filters, 3, padding=padding, activation=activation)(x)
        return keras.layers.MaxPooling2D(2, padding=pool_padding)(x)

    return build


@pytest.mark.parametrize(
    "wrong",
    [{"padding": "valid"}, {"activation": None}, {"pool_padding": "same"}],
    ids=["valid padding", "no relu", "pooling rounds up"],
)
def test_wrong_vgg_blocks_fail(wrong):
    builder = _vgg_builder(**wrong)
    assert _fails("ex06.vgg_block", lambda *a: describe_vgg_block(*a, builder=builder))


def test_vgg_block_with_a_separate_relu_layer_passes_as_in_exercise_4():
    def separate(x, filters, n_convs):
        for _ in range(n_convs):
            x = keras.layers.Conv2D(filters, 3, padding="same")(x)
            x = keras.layers.ReLU()(x)
        return keras.layers.MaxPooling2D(2)(x)

    # The shared layer comparison grades Conv2D + ReLU() as Conv2D(activation="relu").
    assert run_task("ex06.vgg_block", lambda *a: describe_vgg_block(*a, builder=separate)).passed


def test_vgg_params_with_a_fixed_7x7_flatten_fails():
    def fixed_flatten(shape, blocks, dense, classes):
        total = 0
        c = shape[2]
        for f, n in blocks:
            total += ex06._vgg_block_params(c, f, n)
            c = f
        width = 7 * 7 * c
        for units in (*dense, classes):
            total += (width + 1) * units
            width = units
        return total

    assert _fails("ex06.vgg_params", fixed_flatten)


def test_separable_with_biases_or_an_inverted_ratio_fails():
    def with_bias(k, c_in, c_out, h, w):
        d = ex06._separable_savings(k, c_in, c_out, h, w)
        d["separable_params"] += c_out
        return d

    def inverted(k, c_in, c_out, h, w):
        d = ex06._separable_savings(k, c_in, c_out, h, w)
        d["mac_ratio"] = 1 / d["mac_ratio"]
        return d

    assert _fails("ex06.separable_savings", with_bias)
    assert _fails("ex06.separable_savings", inverted)


def _res_builder(projection_when="shape", skip=True):
    def build(x, filters, stride):
        y = keras.layers.Conv2D(filters, 3, strides=stride, padding="same",
                                activation="relu")(x)
        y = keras.layers.Conv2D(filters, 3, padding="same")(y)
        if not skip:
            return keras.layers.Activation("relu")(y)
        needs = stride != 1 or x.shape[-1] != filters
        if projection_when == "stride":
            needs = stride != 1
        shortcut = keras.layers.Conv2D(filters, 1, strides=stride)(x) if needs else x
        return keras.layers.Activation("relu")(keras.layers.Add()([y, shortcut]))

    return build


def test_residual_block_without_the_skip_fails_on_skip():
    builder = _res_builder(skip=False)
    messages = _fails("ex06.residual_block",
                      lambda *a: describe_residual_block(*a, builder=builder))
    assert any("skip" in m or "shortcut" in m for m in messages)


def test_residual_projection_only_for_stride_two_fails():
    builder = _res_builder(projection_when="stride")
    # (28, 28, 16) -> 32 filters with stride 1: the addition itself fails to build.
    assert _fails("ex06.residual_block",
                  lambda *a: describe_residual_block(*a, builder=builder))


def test_residual_block_with_batch_norm_fails_on_params():
    def with_bn(x, filters, stride):
        return arch.residual_block(x, filters, stride, batch_norm=True)

    messages = _fails("ex06.residual_block",
                      lambda *a: describe_residual_block(*a, builder=with_bn))
    assert any("convolutions" in m and "parameters expected" in m for m in messages), messages


# --------------------------------------------------------------------------- fine-tuning


def test_fine_tuning_has_ten_hidden_cases_in_two_runs_one_aspect_each():
    task = get_task("ex06.fine_tuning")
    assert task.deterministic
    public_classes = {spec[1] for spec in ex06.FT_PUBLIC}
    for seed in range(20):
        hidden = task.hidden_cases(np.random.default_rng(seed))
        assert len(hidden) >= 10
        inputs = sorted({c.args for c in hidden}, key=repr)
        assert len(inputs) == 2 and {i[2] for i in inputs} == {"block1", "block2"}
        assert not {i[1] for i in inputs} & public_classes
        for args in inputs:
            parts = [c.expected for c in hidden if c.args == args]
            assert len(parts) == len(ex06.FT_ASPECTS)
            # Together the aspects judge the whole report, each a different part of it.
            whole = ex06._fine_tuning_description(*args)
            for stage, values in whole.items():
                keys = [k for p in parts for k in p.get(stage, {}) if k != "output_shape"]
                assert sorted(keys) == sorted(k for k in values if k != "output_shape")


def test_fine_tuning_runs_the_describer_once_per_input_and_hard_coding_earns_nothing():
    """The self-check, like the grader, runs describe_fine_tuning once per distinct input;
    an answer that knows only the public reports passes every public case and no hidden one."""
    from cnncourse.grading.grader import task_points

    task = get_task("ex06.fine_tuning")
    known = {spec[:4]: ex06._fine_tuning_description(*spec[:4]) for spec in ex06.FT_PUBLIC}
    calls = []

    def hard_coded(shape, classes, block, lr):
        calls.append((shape, classes, block, lr))
        return known.get((shape, classes, block, lr), known[ex06.FT_PUBLIC[0][:4]])

    public = run_task(task.id, hard_coded)
    assert public.passed and len(public.results) == 10 and len(calls) == 2
    for seed in range(5):
        hidden = run_task(task.id, hard_coded, task.hidden_cases(np.random.default_rng(seed)))
        assert not any(r.passed for r in hidden.results), hidden.to_text()
        assert task_points(3, [True] * 10, [r.passed for r in hidden.results]) == 0


def test_fine_tuning_reference_counts_match_keras():
    # The arithmetic of the task module against the parameter counts Keras reports.
    for shape, classes, block, lr, _ in ex06.FT_PUBLIC:
        expected = ex06._fine_tuning_description(shape, classes, block, lr)
        base = tiny_base(shape)
        model = build_transfer_model(base, classes)
        assert model.count_params() == (expected["feature_extraction"]["trainable"]
                                        + expected["feature_extraction"]["non_trainable"])


def _stage2_unfreezing_batch_norm_too(model, base, block, learning_rate):
    for layer in base.layers:
        layer.trainable = layer.name.startswith(block)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss="sparse_categorical_crossentropy")
    return model


def _stage2_without_recompiling(model, base, block, learning_rate):
    base.trainable = True
    for layer in base.layers:
        bn = isinstance(layer, keras.layers.BatchNormalization)
        layer.trainable = layer.name.startswith(block) and not bn
    return model


def _stage2_unfreezing_the_whole_base(model, base, block, learning_rate):
    base.trainable = True
    for layer in base.layers:
        layer.trainable = not isinstance(layer, keras.layers.BatchNormalization)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss="sparse_categorical_crossentropy")
    return model


def _stage1_with_a_trainable_base(base, num_classes):
    model = build_transfer_model(base, num_classes)
    base.trainable = True
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    return model


@pytest.mark.parametrize(
    ("stage1", "stage2", "key", "mistake"),
    [
        # Keras 3: fit's training=True overrides base(..., training=False); an unfrozen
        # BatchNormalization then updates its moving statistics.
        (
            build_transfer_model,
            _stage2_unfreezing_batch_norm_too,
            "bn_statistics_updated",
            "bn_not_frozen",
        ),
        (build_transfer_model, _stage2_without_recompiling, "learning_rate", "not_recompiled"),
        (_stage1_with_a_trainable_base, unfreeze_top_block, "base_changed", "base_not_frozen"),
        (
            build_transfer_model,
            _stage2_unfreezing_the_whole_base,
            "changed_layers",
            "whole_base_unfrozen",
        ),
    ],
    ids=["batch-norm-unfrozen", "no-recompile", "base-not-frozen", "whole-base"],
)
def test_fine_tuning_mistakes_fail_with_their_named_hint(stage1, stage2, key, mistake):
    def wrong(*args):
        return describe_fine_tuning(*args, stage1=stage1, stage2=stage2)

    checked = run_task("ex06.fine_tuning", wrong)
    assert not checked.passed
    assert {r.mistake for r in checked.results if not r.passed} == {mistake}, checked.to_text()
    # One slip costs the aspects it breaks, not the task: the other aspects still pass.
    assert sum(r.passed for r in checked.results) >= 4, checked.to_text()
    case = get_task("ex06.fine_tuning").public_cases()[0]
    report = wrong(*case.args)
    expected = ex06._fine_tuning_description(*case.args)
    stage = "feature_extraction" if key == "base_changed" else "fine_tuning"
    assert report[stage][key] != expected[stage][key], report
