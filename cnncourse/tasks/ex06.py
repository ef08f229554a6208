"""Tasks of exercise 6, "Classic architectures" (chapter 6a).

Students count what VGG blocks, a whole VGG network and a depthwise-separable convolution
cost (plain integer answers), and build two blocks with the Keras functional API: a VGG
block and a residual block.

How the two builder tasks are graded. A case's inputs must be plain data, but a builder
takes and returns Keras tensors. So each builder's task cell also holds a short, given
function that the check call names -- ``describe_vgg_block`` and
``describe_residual_block`` -- which builds a model around the student's block for an
input shape and returns plain data, through the toolkit shared with exercises 4 and 8
(:mod:`cnncourse.tasks.keras_models`): the layers in its one format (VGG); the output
shape, the parameters, the convolutions in that format, the kind of shortcut and whether a
signal passes the shortcut when the 3x3 convolutions are zeroed (residual). The VGG block
is compared layer by layer as exercise 4's CNN is, with the same messages.
The expected descriptions are computed here *without* Keras, from the layer arithmetic;
``tests/test_tasks_ex06.py`` checks them against the blocks of
:mod:`cnncourse.architectures`, so the grading parent never imports TensorFlow. The child
does: grade with the limits in :data:`GRADING_LIMITS` (as for exercise 8). As in exercise
8, the description is computed in the student's process, so an edited ``describe_...``
could report a block it did not build; it must still be right for random hidden shapes,
which takes the same understanding as the task.

The cases are chosen to catch the usual mistakes:

- parameters: forgetting the biases, or giving every convolution of a block the block's
  input channels (only the first convolution sees ``c_in``, the others see ``filters``);
- VGG block: "valid" instead of "same" padding, a missing ReLU, pooling that rounds odd
  sizes up (7 -> 4) instead of down (7 -> 3);
- the VGG total: the flattened size depends on the input size; inputs that are not
  multiples of 32;
- separable savings: biases counted (the task says none), the ratio inverted;
- residual block: a projection shortcut is needed when the number of channels changes
  even with stride 1, not only with stride 2; a "same" convolution with stride 2 rounds
  *up* (7 -> 4); a block without the skip connection.

Named mistakes (issue 13): a failed case whose description is what a classic slip builds
gets a hint naming it -- "valid" padding, no ReLU, pooling that rounds up or is missing
(VGG block); no skip connection, a projection where the identity fits (residual block);
a base not frozen, batch normalisation left trainable, no recompile, the whole base
unfrozen (fine-tuning).

The fine-tuning task (chapter 6b) is graded like the builders: its task cell holds a given
``tiny_base`` (two blocks of convolution, batch normalisation, ReLU and pooling: a stand-in
for a pretrained network, small enough for the grader) and a given
``describe_fine_tuning``, which runs the student's two functions on it, one training step
each, and reports plain data. It catches: a base left trainable during feature extraction;
a batch normalisation layer unfrozen with its block (it then updates its moving
statistics); unfreezing the whole base instead of the top block; no
recompile after changing ``trainable`` (the old learning rate, and nothing in the base
changes); a learning rate other than the one asked for. Each input is judged in five cases,
one per aspect of the report (:data:`FT_ASPECTS`: the first stage; which layers of the
base change; the parameter counts; the batch normalisation statistics; the learning rate),
so that one slip costs one or two aspects, not the task; every case also checks the head's
output shape, which depends on the input, so an answer that ignores its input fails every
hidden case. ``describe_fine_tuning`` seeds everything it draws, so the task is
``deterministic``: the five cases of one input share one run (about 0.7 CPU-seconds), and
the ten hidden cases cost two runs, as the two whole-report cases did before.

Batch normalisation in inference mode: in Keras 3 an outer ``fit`` passes ``training=True``
down to every layer, overriding a ``training=False`` given when the base was called in the
functional model (keras-team/keras issue 20285; chapter 6b shows it), so the task keeps the
top block's ``BatchNormalization`` layers frozen: a frozen one runs in inference mode. The
report's ``bn_statistics_updated`` checks the effect, whatever the mechanism.
"""

from __future__ import annotations

import numpy as np

from cnncourse.exercise import Case, Exercise, Mistake, Task, compare
from cnncourse.tasks.keras_models import compare_layers, conv_params, layer_row

#: VGG16's blocks: (filters, convolutions).
VGG16_BLOCKS = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))


# --------------------------------------------------------------------------- references


_conv_params = conv_params


def _vgg_block_params(c_in: int, filters: int, n_convs: int) -> int:
    return _conv_params(3, c_in, filters) + (n_convs - 1) * _conv_params(3, filters, filters)


def _vgg_block_description(
    input_shape: tuple[int, int, int],
    filters: int,
    n_convs: int,
    *,
    padding: str = "same",
    activation: str = "relu",
    pool: str = "floor",
) -> list[dict]:
    """What ``describe_vgg_block`` reports for a correct block, in the shared format of
    :mod:`cnncourse.tasks.keras_models` (or for a classic variation: another padding, no
    activation, pooling that rounds up, or none)."""
    h, w, c = input_shape
    rows: list[dict] = []
    for i in range(n_convs):
        if padding == "valid":
            h, w = h - 2, w - 2
        params = conv_params(3, c if i == 0 else filters, filters)
        rows.append(layer_row("Conv2D", [h, w, filters], params, activation))
    if pool == "floor":
        rows.append(layer_row("MaxPooling2D", [h // 2, w // 2, filters], 0))
    elif pool == "ceil":
        rows.append(layer_row("MaxPooling2D", [-(-h // 2), -(-w // 2), filters], 0))
    return rows


def compare_vgg_block(expected: list[dict], got: object) -> str | None:
    """The layers of a VGG block against the expected ones, every aspect."""
    return compare_layers(expected, got)


def _vgg_params(
    input_shape: tuple[int, int, int],
    blocks: tuple[tuple[int, int], ...],
    dense_units: tuple[int, ...],
    classes: int,
) -> int:
    h, w, c = input_shape
    total = 0
    for filters, n_convs in blocks:
        total += _vgg_block_params(c, filters, n_convs)
        h, w, c = h // 2, w // 2, filters
    width = h * w * c
    for units in (*dense_units, classes):
        total += width * units + units
        width = units
    return total


def _separable_savings(k: int, c_in: int, c_out: int, height: int, width: int) -> dict:
    std_params = k * k * c_in * c_out
    sep_params = k * k * c_in + c_in * c_out
    return {
        "standard_params": std_params,
        "separable_params": sep_params,
        "standard_macs": height * width * std_params,
        "separable_macs": height * width * sep_params,
        "mac_ratio": sep_params / std_params,
    }


def _residual_block_description(
    input_shape: tuple[int, int, int], filters: int, stride: int
) -> dict:
    """What ``describe_residual_block`` reports for a correct basic block (no BN).

    The convolutions are in the shared format of :mod:`cnncourse.tasks.keras_models`,
    sorted by parameter count then output shape, as
    :func:`~cnncourse.tasks.keras_models.describe_residual` sorts them.
    """
    h, w, c = input_shape
    out = [-(-h // stride), -(-w // stride), filters]  # "same" padding: ceil(h / stride)
    convs = [
        layer_row("Conv2D", out, conv_params(3, c, filters), "relu"),
        layer_row("Conv2D", out, conv_params(3, filters, filters), "linear"),
    ]
    projection = stride != 1 or c != filters
    if projection:
        convs.append(layer_row("Conv2D", out, conv_params(1, c, filters), "linear"))
    return {
        "output_shape": out,
        "params": sum(conv["params"] for conv in convs),
        "convs": sorted(convs, key=lambda r: (r["params"], r["output_shape"])),
        "shortcut": "projection" if projection else "identity",
        "skip": True,
    }


def compare_residual_block(expected: dict, got: object) -> str | None:
    """A residual block's description against the expected one, the shortcut first."""
    if not isinstance(got, dict):
        return f"the description should be a dict, got {type(got).__name__}"
    missing = [key for key in expected if key not in got]
    if missing:
        return f"the description has no {missing[0]!r} (was describe_residual_block edited?)"
    if got["skip"] is not True:
        return (
            "no signal passes a shortcut: add the block's input (or its 1x1 projection) to "
            "the second convolution's output with keras.layers.Add(), then apply ReLU"
        )
    if got["shortcut"] != expected["shortcut"]:
        if expected["shortcut"] == "identity":
            return (
                "the shortcut should be the input itself: with stride 1 and as many filters "
                "as input channels the shapes already agree, so no 1x1 projection is needed"
            )
        return (
            "the shortcut needs a 1x1 convolution (a projection) with the block's stride: "
            "the stride or the number of channels changes"
        )
    message = compare_layers(expected["convs"], got["convs"], ("layers", "shapes", "params"))
    if message:
        return f"the convolutions, sorted by parameter count: {message}"
    for key in ("output_shape", "params"):
        message = compare(expected[key], got[key])
        if message:
            return f"the block's {key.replace('_', ' ')}: {message}"
    return None


# --------------------------------------------------------------------------- cases


def _vgg_block_params_reference(c_in, filters, n_convs):
    return (9 * c_in + 1) * filters + (n_convs - 1) * (9 * filters + 1) * filters


def _block_params_cases() -> list[Case]:
    return [
        Case("VGG16 block1: 3 -> 64 channels, 2 convolutions", (3, 64, 2), expected=38_720),
        Case(
            "VGG16 block3: 128 -> 256 channels, 3 convolutions",
            (128, 256, 3),
            expected=_vgg_block_params(128, 256, 3),
        ),
        Case("one convolution, 1 -> 8 channels", (1, 8, 1), expected=80),
        Case(
            "VGG16 block5: 512 -> 512 channels, 3 convolutions",
            (512, 512, 3),
            expected=_vgg_block_params(512, 512, 3),
        ),
    ]


def _block_params_hidden(rng: np.random.Generator) -> list[Case]:
    cases = []
    for _ in range(10):
        c_in, filters = int(rng.integers(1, 257)), int(rng.integers(1, 513))
        n = int(rng.integers(1, 5))
        cases.append(
            Case(
                f"{c_in} -> {filters} channels, {n} convolutions",
                (c_in, filters, n),
                expected=_vgg_block_params(c_in, filters, n),
            )
        )
    return cases


def _block_tags(shape: tuple[int, int, int], filters: int, n: int) -> tuple[str, ...]:
    h, w, c = shape
    tags = [
        ("an odd height or width (pooling rounds down)", h % 2 or w % 2),
        ("one convolution" if n == 1 else "several convolutions", True),
        ("as many filters as input channels", c == filters),
    ]
    return tuple(t for t, on in tags if on)


def _block_case(
    shape: tuple[int, int, int], filters: int, n: int, label: str = "", hidden: bool = False
) -> Case:
    name = label or f"input {shape}, {filters} filters, {n} convolutions"
    return Case(
        name,
        (shape, filters, n),
        expected=_vgg_block_description(shape, filters, n),
        tags=_block_tags(shape, filters, n) if hidden else (),
    )


def _block_cases() -> list[Case]:
    return [
        _block_case((224, 224, 3), 64, 2, "VGG16 block1 on a 224x224x3 image"),
        _block_case((28, 28, 256), 512, 3, "VGG16 block4: (28, 28, 256), 512 filters, 3 convs"),
        _block_case((7, 9, 1), 4, 1, "odd sizes (7, 9, 1): pooling rounds down"),
    ]


def _block_hidden(rng: np.random.Generator) -> list[Case]:
    cases = []
    for k in range(10):
        h, w = (int(v) for v in rng.integers(4, 33, size=2))
        if k % 2:  # half of them odd-sized, where pooling's rounding shows
            h += 1 - h % 2
        shape = (h, w, int(rng.integers(1, 17)))
        n = int(rng.integers(1, 4))
        cases.append(_block_case(shape, int(rng.integers(1, 33)), n, hidden=True))
    return cases


def _block_variant(**bug):
    def wrong(shape, filters, n_convs):
        return _vgg_block_description(shape, filters, n_convs, **bug)

    return wrong


VGG_BLOCK_MISTAKES = (
    Mistake(
        "valid_padding",
        'the convolutions use "valid" padding (the Keras default), which trims a border at '
        'every convolution; a VGG block keeps the size until the pooling: padding="same"',
        _block_variant(padding="valid"),
    ),
    Mistake(
        "relu_missing",
        'the convolutions have no activation: give each activation="relu"',
        _block_variant(activation="linear"),
    ),
    Mistake(
        "pool_rounds_up",
        'the pooling rounds odd sizes up (padding="same"); MaxPooling2D(2) with the default '
        '"valid" padding rounds down, as VGG does',
        _block_variant(pool="ceil"),
    ),
    Mistake(
        "pool_missing",
        "the block ends without its 2x2 max pooling: finish with keras.layers.MaxPooling2D(2)",
        _block_variant(pool="none"),
    ),
)


def _vgg_case(shape, blocks, dense, classes, label: str = "") -> Case:
    name = label or f"input {shape}, blocks {blocks}, dense {dense}, {classes} classes"
    return Case(
        name, (shape, blocks, dense, classes), expected=_vgg_params(shape, blocks, dense, classes)
    )


def _vgg_cases() -> list[Case]:
    return [
        Case(
            "VGG16: 224x224x3, five blocks, 4096 -> 4096 -> 1000",
            ((224, 224, 3), VGG16_BLOCKS, (4096, 4096), 1000),
            expected=138_357_544,
        ),
        _vgg_case(
            (32, 32, 3),
            VGG16_BLOCKS,
            (4096, 4096),
            10,
            "VGG16 on 32x32x3 images with 10 classes (flatten size 512)",
        ),
        _vgg_case(
            (28, 28, 1),
            ((32, 2), (64, 2)),
            (128,),
            10,
            "a small VGG for digits: 28x28x1, (32, 2), (64, 2), dense 128",
        ),
        _vgg_case(
            (50, 50, 3),
            ((16, 1), (32, 1), (64, 2)),
            (),
            5,
            "50x50x3 (pooling rounds down twice), no hidden dense layer",
        ),
    ]


def _vgg_hidden(rng: np.random.Generator) -> list[Case]:
    cases = []
    for _ in range(10):
        n_blocks = int(rng.integers(1, 5))
        blocks = tuple(
            (int(rng.integers(1, 129)), int(rng.integers(1, 4))) for _ in range(n_blocks)
        )
        side = int(rng.integers(2**n_blocks, 2**n_blocks + 60))
        shape = (side, int(rng.integers(2**n_blocks, 2**n_blocks + 60)), int(rng.integers(1, 4)))
        dense = tuple(int(u) for u in rng.integers(1, 513, size=int(rng.integers(0, 3))))
        cases.append(_vgg_case(shape, blocks, dense, int(rng.integers(2, 1001))))
    return cases


def _sep_case(k: int, c_in: int, c_out: int, h: int, w: int, label: str = "") -> Case:
    name = label or f"{k}x{k}, {c_in} -> {c_out} channels, {h}x{w} output"
    return Case(name, (k, c_in, c_out, h, w), expected=_separable_savings(k, c_in, c_out, h, w))


def _sep_cases() -> list[Case]:
    return [
        _sep_case(3, 512, 512, 14, 14, "MobileNet: 3x3, 512 -> 512 channels, 14x14 map"),
        _sep_case(3, 32, 64, 112, 112, "MobileNet: 3x3, 32 -> 64 channels, 112x112 map"),
        _sep_case(5, 16, 8, 7, 9, "5x5, 16 -> 8 channels, 7x9 map"),
    ]


def _sep_hidden(rng: np.random.Generator) -> list[Case]:
    cases = []
    for _ in range(10):
        k = int(rng.choice([1, 3, 5, 7]))
        c_in, c_out = (int(v) for v in rng.integers(1, 1025, size=2))
        h, w = (int(v) for v in rng.integers(1, 113, size=2))
        cases.append(_sep_case(k, c_in, c_out, h, w))
    return cases


def _res_tags(shape: tuple[int, int, int], filters: int, stride: int) -> tuple[str, ...]:
    h, w, c = shape
    tags = [
        ("stride 2", stride == 2),
        ("an odd height or width with stride 2", stride == 2 and (h % 2 or w % 2)),
        ("a change in the number of channels", c != filters),
        ("an identity shortcut (stride 1, same channels)", stride == 1 and c == filters),
    ]
    return tuple(t for t, on in tags if on)


def _res_case(
    shape: tuple[int, int, int], filters: int, stride: int, label: str = "", hidden: bool = False
) -> Case:
    name = label or f"input {shape}, {filters} filters, stride {stride}"
    return Case(
        name,
        (shape, filters, stride),
        expected=_residual_block_description(shape, filters, stride),
        tags=_res_tags(shape, filters, stride) if hidden else (),
    )


def _res_cases() -> list[Case]:
    return [
        _res_case((56, 56, 64), 64, 1, "same shape: (56, 56, 64), 64 filters, stride 1"),
        _res_case((56, 56, 64), 128, 2, "downsampling: (56, 56, 64), 128 filters, stride 2"),
        _res_case((28, 28, 16), 32, 1, "more channels, stride 1: (28, 28, 16), 32 filters"),
        _res_case((7, 7, 32), 32, 2, "odd size, stride 2: (7, 7, 32) -> 4x4 ('same' rounds up)"),
    ]


def _res_hidden(rng: np.random.Generator) -> list[Case]:
    """Ten blocks: identity shortcuts, channel changes at stride 1, and stride 2."""
    cases = []
    for k in range(10):
        h, w = (int(v) for v in rng.integers(1, 17, size=2))
        c = int(rng.integers(1, 33))
        kind = k % 3  # 0: identity, 1: more or fewer channels at stride 1, 2: stride 2
        filters = c if kind == 0 else int(rng.choice([v for v in range(1, 33) if v != c]))
        if kind == 2 and rng.random() < 0.5:
            filters = c
        cases.append(_res_case((h, w, c), filters, 2 if kind == 2 else 1, hidden=True))
    return cases


def _res_skip_missing(shape, filters, stride) -> dict:
    return {"skip": False}


def _res_projection_always(shape, filters, stride) -> dict:
    if stride != 1 or shape[2] != filters:
        raise ValueError("a projection is right here")  # the detector does not apply
    return {"shortcut": "projection"}


RESIDUAL_MISTAKES = (
    Mistake(
        "skip_missing",
        "no signal passes a shortcut, so this is a plain two-convolution block: add the "
        "input (or its 1x1 projection) to the second convolution's output with "
        "keras.layers.Add(), then apply ReLU",
        _res_skip_missing,
    ),
    Mistake(
        "projection_always",
        "the shortcut is a 1x1 convolution even where the shapes already agree; use the "
        "input itself unless the stride is 2 or the number of channels changes",
        _res_projection_always,
    ),
)


#: The given ``tiny_base``: (filters) of its two blocks, each conv 3x3 + BN + ReLU + pool 2.
TINY_BASE_FILTERS = (4, 8)


def _fine_tuning_description(
    input_shape: tuple[int, int, int], num_classes: int, block: str, learning_rate: float
) -> dict:
    """What ``describe_fine_tuning`` reports when both stages are right."""
    c = input_shape[2]
    convs, bns = [], []
    for filters in TINY_BASE_FILTERS:
        convs.append(_conv_params(3, c, filters))
        bns.append(2 * filters)  # gamma and beta (trainable), or the two moving statistics
        c = filters
    base_params = sum(convs) + 2 * sum(bns)
    head = _conv_params(1, c, num_classes)  # GlobalAveragePooling2D, then Dense
    top = int(block.removeprefix("block")) - 1
    return {
        "feature_extraction": {
            "output_shape": [num_classes],
            "trainable": head,
            "non_trainable": base_params,
            "base_changed": False,
        },
        "fine_tuning": {
            "trainable": head + convs[top],
            "non_trainable": base_params - convs[top],
            "changed_layers": [f"{block}_conv"],
            "bn_statistics_updated": False,
            "learning_rate": float(np.float32(learning_rate)),
        },
    }


#: The aspects of the report that the fine-tuning cases judge one at a time, by stage and
#: key, and how a case names them. Every case also checks the head's output shape, which
#: depends on the input: an answer that ignores its input fails every hidden case.
FT_ASPECTS = {
    "feature_extraction": (
        "feature extraction trains the new head only",
        {"feature_extraction": ("trainable", "non_trainable", "base_changed")},
    ),
    "top_block": (
        "fine-tuning changes the top block's convolution only",
        {"fine_tuning": ("changed_layers",)},
    ),
    "counts": (
        "fine-tuning's trainable and frozen parameter counts",
        {"fine_tuning": ("trainable", "non_trainable")},
    ),
    "batch_norm": (
        "batch normalisation keeps its moving statistics",
        {"fine_tuning": ("bn_statistics_updated",)},
    ),
    "learning_rate": (
        "recompiled at the learning rate asked for",
        {"fine_tuning": ("learning_rate",)},
    ),
}


def _ft_aspect(report: dict, aspect: str) -> dict:
    """The part of a full report that ``aspect`` judges, with the head's output shape."""
    part: dict = {
        "feature_extraction": {"output_shape": report["feature_extraction"]["output_shape"]}
    }
    for stage, keys in FT_ASPECTS[aspect][1].items():
        part.setdefault(stage, {}).update({key: report[stage][key] for key in keys})
    return part


def _ft_tags(shape, block: str) -> tuple[str, ...]:
    """Properties of a hidden input that a failed case may name (never its values)."""
    colour = "colour images" if shape[2] == 3 else "greyscale images"
    top = "the first block unfrozen" if block == "block1" else "the second block unfrozen"
    return colour, top


def _ft_cases_for(
    shape, classes: int, block: str, lr: float, label: str = "", hidden: bool = False
) -> list[Case]:
    """One case per aspect of the report for one input: five cases, one run of the answer
    (the task is ``deterministic``: ``describe_fine_tuning`` seeds everything it draws)."""
    name = label or f"input {shape}, {classes} classes, unfreeze {block}, learning rate {lr:g}"
    report = _fine_tuning_description(shape, classes, block, lr)
    return [
        Case(
            f"{name}: {text}",
            (shape, classes, block, lr),
            expected=_ft_aspect(report, aspect),
            tags=(*_ft_tags(shape, block), f"{text} checked") if hidden else (),
        )
        for aspect, (text, _) in FT_ASPECTS.items()
    ]


#: The inputs of the public cases; hidden inputs have other numbers of classes.
FT_PUBLIC = (
    ((8, 8, 1), 5, "block2", 1e-4, "greyscale 8x8, 5 classes, top block block2"),
    ((12, 12, 3), 3, "block1", 1e-5, "colour 12x12, 3 classes, unfreeze block1"),
)


def _ft_cases() -> list[Case]:
    return [case for spec in FT_PUBLIC for case in _ft_cases_for(*spec)]


def _ft_hidden(rng: np.random.Generator) -> list[Case]:
    """Two random inputs, one per block, with numbers of classes the public cases do not
    use, each judged on the five aspects: ten cases, two runs of the answer."""
    public_classes = {spec[1] for spec in FT_PUBLIC}
    cases = []
    for block in rng.permutation(["block1", "block2"]):
        side = int(rng.integers(4, 17))
        shape = (side, side, int(rng.choice([1, 3])))
        lr = float(rng.choice([1e-5, 3e-5, 1e-4, 3e-4]))
        classes = int(rng.choice([k for k in range(2, 11) if k not in public_classes]))
        cases += _ft_cases_for(shape, classes, str(block), lr, hidden=True)
    return cases


def _ft_variant(stage: str, **parts):
    return lambda shape, classes, block, lr: {stage: dict(parts)}


def _ft_whole_base(shape, classes, block, lr) -> dict:
    return {"fine_tuning": {"changed_layers": [f"block{i}_conv" for i in (1, 2)]}}


FINE_TUNING_MISTAKES = (
    Mistake(
        "base_not_frozen",
        "the base's weights changed during feature extraction: set base.trainable = False "
        "before compiling the new model",
        _ft_variant("feature_extraction", base_changed=True),
    ),
    Mistake(
        "bn_not_frozen",
        "a BatchNormalization layer of the base updated its moving statistics: keep the "
        "batch normalisation layers frozen (trainable = False) when you unfreeze a block, "
        "so that they run in inference mode",
        _ft_variant("fine_tuning", bn_statistics_updated=True),
    ),
    Mistake(
        "not_recompiled",
        "the model still trains with the first stage's optimizer: after changing trainable, "
        "compile again, with Adam(learning_rate)",
        _ft_variant("fine_tuning", learning_rate=float(np.float32(1e-3))),
    ),
    Mistake(
        "whole_base_unfrozen",
        "every block of the base was unfrozen; fine-tuning unfreezes only the top block "
        "named by `block` (the layers whose name starts with it)",
        _ft_whole_base,
    ),
)


#: Limits the builder tasks need in the grader (TensorFlow in the child), as in exercise 8.
GRADING_LIMITS = {"memory_mb": 3072, "timeout_s": 60.0, "nproc": 512}  # TF thread pools

TASKS = [
    Task(
        "ex06.vgg_block_params",
        1,
        "parameters of a VGG block",
        _block_params_cases,
        _block_params_hidden,
        chapter="chapters/06a_classic_architectures.html#vgg16-depth-from-one-small-kernel-2014",
        reference=_vgg_block_params_reference,
    ),
    Task(
        "ex06.vgg_block",
        2,
        "a VGG block with the functional API",
        _block_cases,
        _block_hidden,
        chapter="chapters/06a_classic_architectures.html#vgg16-depth-from-one-small-kernel-2014",
        comparator=compare_vgg_block,
        mistakes=VGG_BLOCK_MISTAKES,
    ),
    Task(
        "ex06.vgg_params",
        2,
        "parameters of a whole VGG network",
        _vgg_cases,
        _vgg_hidden,
        chapter="chapters/06a_classic_architectures.html#vgg16-depth-from-one-small-kernel-2014",
        calls=("ex06.vgg_block_params",),
    ),
    Task(
        "ex06.separable_savings",
        2,
        "standard against depthwise-separable convolution",
        _sep_cases,
        _sep_hidden,
        chapter="chapters/06a_classic_architectures.html#mobilenet-split-the-convolution-in-two-2017",
    ),
    Task(
        "ex06.residual_block",
        3,
        "a residual block with the functional API",
        _res_cases,
        _res_hidden,
        chapter="chapters/06a_classic_architectures.html#resnet-let-the-signal-skip-2015",
        comparator=compare_residual_block,
        mistakes=RESIDUAL_MISTAKES,
    ),
    Task(
        "ex06.fine_tuning",
        3,
        "feature extraction, then fine-tuning the top block",
        _ft_cases,
        _ft_hidden,
        chapter="chapters/06b_transfer_learning.html#two-ways-to-reuse-a-pretrained-network",
        mistakes=FINE_TUNING_MISTAKES,
        deterministic=True,  # five cases judge aspects of one seeded run
    ),
]


EXERCISE = Exercise("ex06", tuple(TASKS), limits=GRADING_LIMITS)
