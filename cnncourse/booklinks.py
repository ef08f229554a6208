"""Where the book teaches each task: links from feedback pages and self-checks to a section.

A task may declare the section itself (a ``chapter`` field such as
``"chapters/02_convolution.html#padding-valid-and-same"``); tasks that do not are looked up
in :data:`SECTIONS`, which names the chapter notebook and the heading that teaches the task.
The anchor is the id that Sphinx gives that heading (:func:`heading_id`), so a test can
check that every target exists in the chapter notebooks, and the browser test that it
exists in the built book.

The base of the links is the published book: ``CNNCOURSE_BOOK_URL`` when set (or the
``book_url`` argument), else :data:`DEFAULT_BOOK_URL`.

Examples
--------
>>> heading_id('Padding: "valid" and "same"')
'padding-valid-and-same'
>>> heading_id("5.5 `tf.data`: feeding the model")
'tf-data-feeding-the-model'
>>> section_path("ex02.zero_pad")
'chapters/02_convolution.html#padding-valid-and-same'
>>> book_link("ex02.zero_pad", "https://example.org/book/")
'https://example.org/book/chapters/02_convolution.html#padding-valid-and-same'
"""

from __future__ import annotations

import dataclasses
import os
import re
import unicodedata

__all__ = [
    "DEFAULT_BOOK_URL",
    "SECTIONS",
    "book_link",
    "book_url",
    "declared_chapter",
    "heading_id",
    "section_path",
    "section_title",
]

DEFAULT_BOOK_URL = "https://cnncourse.github.io/cnncourse/"

# task id -> (chapter notebook stem, heading text as written in the notebook)
SECTIONS: dict[str, tuple[str, str]] = {
    "ex01.dense_params": ("01_why_cnns", "1.4 The parameter explosion"),
    "ex01.conv_params": ("01_why_cnns", "1.4 The parameter explosion"),
    "ex01.shift_images": ("01_why_cnns", "1.2 Move the digit a few pixels"),
    "ex02.zero_pad": ("02_convolution", 'Padding: "valid" and "same"'),
    "ex02.conv_output_size": ("02_convolution", "Stride and the output size"),
    "ex02.conv_single_step": ("02_convolution", "The formula, and a calculation by hand"),
    "ex02.conv2d": ("02_convolution", "Several input channels and several filters"),
    "ex02.conv2d_backward": ("02_convolution", "Loops versus one matrix product"),
    "ex03.max_pool2d": ("03_pooling_activations", "Pooling: one number per window"),
    "ex03.avg_pool2d": ("03_pooling_activations", "Pooling: one number per window"),
    "ex03.global_average_pool": ("03_pooling_activations", "Global average pooling"),
    "ex03.relu": ("03_pooling_activations", "Activation functions: ReLU, sigmoid and softmax"),
    "ex03.softmax": ("03_pooling_activations", "Why softmax subtracts the maximum"),
    "ex04.build_cnn": ("04_first_cnn", "4.4 A CNN for all ten digits"),
    "ex04.compile_cnn": ("04_first_cnn", "4.5 The loss: sparse or categorical cross-entropy?"),
    "ex04.train_cnn": ("04_first_cnn", "4.6 Training"),
    "ex05.normalize": (
        "05a_pipelines_augmentation",
        "5.1 Normalization: putting the pixels on a sensible scale",
    ),
    "ex05.standardize": (
        "05a_pipelines_augmentation",
        "5.1 Normalization: putting the pixels on a sensible scale",
    ),
    "ex05.digit_augmentation": (
        "05a_pipelines_augmentation",
        "5.3 Augmentations that change the label",
    ),
    "ex05.make_batches": ("05a_pipelines_augmentation", "5.5 `tf.data`: feeding the model"),
    "ex06.vgg_block_params": (
        "06a_classic_architectures",
        "VGG16: depth from one small kernel (2014)",
    ),
    "ex06.vgg_block": ("06a_classic_architectures", "VGG16: depth from one small kernel (2014)"),
    "ex06.vgg_params": (
        "06a_classic_architectures",
        "Where the parameters are, and where the arithmetic is",
    ),
    "ex06.separable_savings": (
        "06a_classic_architectures",
        "MobileNet: split the convolution in two (2017)",
    ),
    "ex06.residual_block": ("06a_classic_architectures", "ResNet: let the signal skip (2015)"),
    "ex07.grad_cam": ("07_interpretation", "Grad-CAM: where is the evidence for a class?"),
    "ex07.precision_recall": ("07_interpretation", "Where does the model go wrong?"),
    "ex08.build_hypermodel": ("08_tuning", "8.3 A search space in KerasTuner"),
    "ex09.check_image": ("09_production", "An inference function that refuses garbage"),
    "ex09.preprocess": ("09_production", "An inference function that refuses garbage"),
    "ex09.to_response": ("09_production", "Serving predictions over HTTP"),
    "ex11.iou": (
        "10_beyond_classification",
        "Detection: boxes, IoU and non-maximum suppression",
    ),
    "ex11.non_max_suppression": (
        "10_beyond_classification",
        "Detection: boxes, IoU and non-maximum suppression",
    ),
    "ex11.transposed_conv_output_size": (
        "10_beyond_classification",
        "Upsampling and the transposed convolution",
    ),
    "ex11.dice": ("10_beyond_classification", "Measuring a mask: IoU and Dice"),
    "ex11.train_segmenter": ("10_beyond_classification", "A small U-Net"),
}

_MARKUP = re.compile(r"[`*_]")
_NON_ID = re.compile(r"[^a-z0-9]+")
_AT_ENDS = re.compile(r"^[-0-9]+|-+$")


def heading_id(text: str) -> str:
    """The HTML id Sphinx gives a heading (``docutils.nodes.make_id`` of its plain text)."""
    plain = _MARKUP.sub("", text)
    ascii_text = unicodedata.normalize("NFKD", plain).encode("ascii", "ignore").decode()
    return _AT_ENDS.sub("", _NON_ID.sub("-", " ".join(ascii_text.lower().split())))


def declared_chapter(task: object) -> str:
    """The ``chapter`` a task object declares itself (a dataclass field), or ``""``."""
    if not dataclasses.is_dataclass(task):
        return ""
    names = {f.name for f in dataclasses.fields(task)}
    return str(vars(task).get("chapter") or "") if "chapter" in names else ""


def section_path(task_id: str, chapter: str = "") -> str | None:
    """``chapters/<stem>.html#<anchor>`` of the section that teaches ``task_id``, if known.

    ``chapter`` is what the task declares itself; it wins over :data:`SECTIONS`.
    """
    if chapter:
        return chapter
    if task_id not in SECTIONS:
        return None
    stem, heading = SECTIONS[task_id]
    return f"chapters/{stem}.html#{heading_id(heading)}"


def section_title(task_id: str, chapter: str = "") -> str | None:
    """Words for the link: the heading's text, or the declared anchor read as words.

    Examples
    --------
    >>> section_title("ex02.zero_pad")
    'Padding: "valid" and "same"'
    >>> section_title("ex00.x", "chapters/02_convolution.html#stride-and-the-output-size")
    'Stride and the output size'
    """
    path = section_path(task_id, chapter)
    if path is None:
        return None
    anchor = path.partition("#")[2]
    if task_id in SECTIONS and heading_id(SECTIONS[task_id][1]) == anchor:
        return _MARKUP.sub("", SECTIONS[task_id][1])
    if not anchor:
        return None
    words = anchor.replace("-", " ")
    return words[:1].upper() + words[1:]


def book_url(base: str | None = None) -> str:
    """The base URL of the published book, ending in ``/``."""
    url = base or os.environ.get("CNNCOURSE_BOOK_URL") or DEFAULT_BOOK_URL
    return url if url.endswith("/") else url + "/"


def book_link(task_id: str, base: str | None = None, chapter: str = "") -> str | None:
    """Absolute link to the section that teaches ``task_id``, or ``None`` when unknown."""
    path = section_path(task_id, chapter)
    return None if path is None else book_url(base) + path
