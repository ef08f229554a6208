"""Tasks of exercise 6, "Classic architectures" (chapter 6a).

Students count what VGG blocks, a whole VGG network and a depthwise-separable convolution
cost (plain integer answers), and build two blocks with the Keras functional API: a VGG
block and a residual block.

How the two builder tasks are graded. A case's inputs must be plain data, but a builder
takes and returns Keras tensors. So each builder's task cell also holds a short, given
function that the check call names -- ``describe_vgg_block`` and
``describe_residual_block`` -- which builds a model around the student's block for an
input shape and returns plain data: per layer the class, output shape, parameters and
activation (VGG); the output shape, the parameters, the convolutions, the kind of shortcut
and whether a signal passes the shortcut when the 3x3 convolutions are zeroed (residual).
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

The fine-tuning task (chapter 6b) is graded like the builders: its task cell holds a given
``tiny_base`` (two blocks of convolution, batch normalisation, ReLU and pooling: a stand-in
for a pretrained network, small enough for the grader) and a given
``describe_fine_tuning``, which runs the student's two functions on it, one training step
each, and reports plain data. It catches: a base left trainable during feature extraction;
a batch normalisation layer unfrozen with its block (it then updates its moving
statistics); unfreezing the whole base instead of the top block; no
recompile after changing ``trainable`` (the old learning rate, and nothing in the base
changes); a learning rate other than the one asked for.

Batch normalisation in inference mode: in Keras 3 an outer ``fit`` passes ``training=True``
down to every layer, overriding a ``training=False`` given when the base was called in the
functional model (keras-team/keras issue 20285; chapter 6b shows it), so the task keeps the
top block's ``BatchNormalization`` layers frozen: a frozen one runs in inference mode. The
report's ``bn_statistics_updated`` checks the effect, whatever the mechanism.
"""

from __future__ import annotations

import numpy as np

from cnncourse.exercise import Case, Exercise, Task

#: VGG16's blocks: (filters, convolutions).
VGG16_BLOCKS = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))


# --------------------------------------------------------------------------- references


def _conv_params(k: int, c_in: int, c_out: int, bias: bool = True) -> int:
    return k * k * c_in * c_out + (c_out if bias else 0)


def _vgg_block_params(c_in: int, filters: int, n_convs: int) -> int:
    return _conv_params(3, c_in, filters) + (n_convs - 1) * _conv_params(3, filters, filters)


def _vgg_block_description(
    input_shape: tuple[int, int, int], filters: int, n_convs: int
) -> list[list]:
    """What ``describe_vgg_block`` reports for a correct block: [class, shape, params, act]."""
    h, w, c = input_shape
    rows: list[list] = []
    for i in range(n_convs):
        params = _conv_params(3, c if i == 0 else filters, filters)
        rows.append(["Conv2D", [h, w, filters], params, "relu"])
    rows.append(["MaxPooling2D", [h // 2, w // 2, filters], 0, None])
    return rows


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
    """What ``describe_residual_block`` reports for a correct basic block (no BN)."""
    h, w, c = input_shape
    out = [-(-h // stride), -(-w // stride), filters]  # "same" padding: ceil(h / stride)
    convs = [
        [[3, 3], out, _conv_params(3, c, filters)],
        [[3, 3], out, _conv_params(3, filters, filters)],
    ]
    projection = stride != 1 or c != filters
    if projection:
        convs.append([[1, 1], out, _conv_params(1, c, filters)])
    return {
        "output_shape": out,
        "params": sum(conv[2] for conv in convs),
        "convs": sorted(convs),
        "shortcut": "projection" if projection else "identity",
        "skip": True,
    }


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


def _block_case(shape: tuple[int, int, int], filters: int, n: int, label: str = "") -> Case:
    name = label or f"input {shape}, {filters} filters, {n} convolutions"
    return Case(name, (shape, filters, n), expected=_vgg_block_description(shape, filters, n))


def _block_cases() -> list[Case]:
    return [
        _block_case((224, 224, 3), 64, 2, "VGG16 block1 on a 224x224x3 image"),
        _block_case((28, 28, 256), 512, 3, "VGG16 block4: (28, 28, 256), 512 filters, 3 convs"),
        _block_case((7, 9, 1), 4, 1, "odd sizes (7, 9, 1): pooling rounds down"),
    ]


def _block_hidden(rng: np.random.Generator) -> list[Case]:
    cases = []
    for _ in range(4):
        h, w = (int(v) for v in rng.integers(2, 33, size=2))
        shape = (h, w, int(rng.integers(1, 17)))
        cases.append(_block_case(shape, int(rng.integers(1, 33)), int(rng.integers(1, 4))))
    return cases


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


def _res_case(shape: tuple[int, int, int], filters: int, stride: int, label: str = "") -> Case:
    name = label or f"input {shape}, {filters} filters, stride {stride}"
    return Case(
        name, (shape, filters, stride), expected=_residual_block_description(shape, filters, stride)
    )


def _res_cases() -> list[Case]:
    return [
        _res_case((56, 56, 64), 64, 1, "same shape: (56, 56, 64), 64 filters, stride 1"),
        _res_case((56, 56, 64), 128, 2, "downsampling: (56, 56, 64), 128 filters, stride 2"),
        _res_case((28, 28, 16), 32, 1, "more channels, stride 1: (28, 28, 16), 32 filters"),
        _res_case((7, 7, 32), 32, 2, "odd size, stride 2: (7, 7, 32) -> 4x4 ('same' rounds up)"),
    ]


def _res_hidden(rng: np.random.Generator) -> list[Case]:
    cases = []
    for _ in range(4):
        h, w = (int(v) for v in rng.integers(1, 17, size=2))
        c = int(rng.integers(1, 33))
        filters = c if rng.random() < 0.4 else int(rng.integers(1, 33))
        cases.append(_res_case((h, w, c), filters, int(rng.integers(1, 3))))
    return cases


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


def _ft_case(shape, classes: int, block: str, lr: float, label: str = "") -> Case:
    name = label or f"input {shape}, {classes} classes, unfreeze {block}, learning rate {lr:g}"
    return Case(
        name,
        (shape, classes, block, lr),
        expected=_fine_tuning_description(shape, classes, block, lr),
    )


def _ft_cases() -> list[Case]:
    return [
        _ft_case((8, 8, 1), 5, "block2", 1e-4, "greyscale 8x8, 5 classes, top block block2"),
        _ft_case((12, 12, 3), 3, "block1", 1e-5, "colour 12x12, 3 classes, unfreeze block1"),
    ]


def _ft_hidden(rng: np.random.Generator) -> list[Case]:
    cases = []
    for _ in range(2):
        side = int(rng.integers(4, 17))
        shape = (side, side, int(rng.choice([1, 3])))
        lr = float(rng.choice([1e-5, 3e-5, 1e-4, 3e-4]))
        cases.append(_ft_case(shape, int(rng.integers(2, 11)), f"block{rng.integers(1, 3)}", lr))
    return cases


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
        few_hidden="each case builds a Keras model in the grader, which takes seconds",
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
        few_hidden="each case builds a Keras model in the grader, which takes seconds",
    ),
    Task(
        "ex06.fine_tuning",
        3,
        "feature extraction, then fine-tuning the top block",
        _ft_cases,
        _ft_hidden,
        chapter="chapters/06b_transfer_learning.html#two-ways-to-reuse-a-pretrained-network",
        few_hidden="each case builds a Keras model in the grader, which takes seconds",
    ),
]


EXERCISE = Exercise("ex06", tuple(TASKS), limits=GRADING_LIMITS)
