"""Tests of cnncourse.benchmarks: the timing helpers of chapters 2 and 9 and of bench/."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cnncourse import benchmarks

ROOT = Path(__file__).resolve().parents[1]


def test_best_time_returns_the_shortest_run():
    durations = iter([0.0, 0.05, 0.0, 0.02])  # the warm-up, then three timed runs

    def fn():
        import time

        time.sleep(next(durations))

    best = benchmarks.best_time(fn, repeats=3, pause=0.0)
    assert 0.0 <= best < 0.02


def test_latency_ms_counts_calls_and_orders_percentiles():
    calls = []
    stats = benchmarks.latency_ms(calls.append, np.zeros(2), calls=7, warmup=3)
    assert len(calls) == 10
    assert stats["calls"] == 7
    assert 0.0 <= stats["p50_ms"] <= stats["p95_ms"]


@pytest.mark.parametrize("bad", [0, -1])
def test_latency_ms_refuses_no_calls(bad):
    with pytest.raises(ValueError, match="calls must be >= 1"):
        benchmarks.latency_ms(lambda image: image, np.zeros(2), calls=bad)


def test_throughput_feeds_batches_of_the_requested_size_cycling_the_images():
    sizes = []
    rate = benchmarks.throughput(lambda batch: sizes.append(len(batch)), np.zeros((3, 2)), 8,
                                 min_seconds=0.0)
    assert rate > 0
    assert set(sizes) == {8}
    assert len(sizes) >= 4  # one warm-up, at least three timed batches


def test_throughput_refuses_an_empty_batch():
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        benchmarks.throughput(lambda batch: None, np.zeros((3, 2)), 0)


def test_time_conv_implementations_agrees_with_tensorflow_and_scales_the_naive_time():
    (row,) = benchmarks.time_conv_implementations([(3, 7, 7, 2, 4)], repeats=1,
                                                  naive_images=1, naive_repeats=1)
    assert row["shape"] == (3, 7, 7, 2, 4)
    assert row["naive_images"] == 1
    assert row["max_abs_diff"] < 1e-4
    assert row["naive_over_vectorized"] == pytest.approx(row["naive_s"] / row["vectorized_s"])
    assert row["vectorized_over_tf"] == pytest.approx(row["vectorized_s"] / row["tf_s"])


def _conv_row(vec_over_tf, naive_over_vec):
    return {"shape": (1, 4, 4, 1, 1), "naive_s": 1.0, "naive_images": 1,
            "vectorized_s": 0.01, "tf_s": 0.01, "vectorized_over_tf": vec_over_tf,
            "naive_over_vectorized": naive_over_vec, "max_abs_diff": 0.0}


def test_conv_targets_need_every_row():
    good, slow_vectorized = _conv_row(1.0, 500.0), _conv_row(3.0, 500.0)
    assert benchmarks.conv_targets_met([good]) == (True, True)
    assert benchmarks.conv_targets_met([good, slow_vectorized]) == (False, True)
    assert "Target NOT MET" in benchmarks.format_conv_table([good, slow_vectorized])


def test_convert_tflite_refuses_an_unknown_quantization():
    with pytest.raises(ValueError, match="quantization must be one of"):
        benchmarks.convert_tflite("nowhere", "int4")


def test_format_predictor_table_has_one_column_per_batch_size():
    row = {"variant": "keras", "p50_ms": 1.0, "p95_ms": 2.0, "img_per_s_b1": 10.0,
           "img_per_s_b32": 300.0}
    header = benchmarks.format_predictor_table([row]).splitlines()[0]
    assert "img/s @1" in header and "img/s @32" in header
    with pytest.raises(ValueError):
        benchmarks.format_predictor_table([])


def test_make_predictors_and_benchmark_give_one_row_per_variant(tmp_path):
    keras = pytest.importorskip("keras")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(3, activation="softmax")])
    predictors = benchmarks.make_predictors(model, ["a", "b", "c"], tmp_path)
    assert sorted(predictors) == ["keras", "saved_model", "tflite_dynamic_range",
                                  "tflite_float16", "tflite_float32"]
    images = np.random.default_rng(0).integers(0, 256, (4, 28, 28), dtype=np.uint8)
    rows = benchmarks.benchmark_predictors(predictors, images, latency_calls=2,
                                           batch_sizes=(2,), min_seconds=0.0)
    assert [r["variant"] for r in rows] == list(predictors)
    assert all(r["img_per_s_b2"] > 0 for r in rows)


def test_conv_bench_script_is_a_thin_wrapper_that_runs():
    # The script imports the package's code (no copy of it) and still prints its table.
    source = (ROOT / "bench" / "conv_bench.py").read_text()
    assert "from cnncourse.benchmarks import" in source
    assert "def time_conv_implementations" not in source
    inference = (ROOT / "bench" / "inference_bench.py").read_text()
    assert "from cnncourse.benchmarks import" in inference
    assert "def latency_ms" not in inference
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "conv_bench.py"), "--help"],
                            capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "--repeats" in result.stdout


def test_no_notebook_loads_code_from_bench_by_file_path():
    # Chapters import the package (cnncourse.benchmarks), which also exists in a wheel
    # install; bench/ is a folder of the repository only.
    import json

    for folder in ("chapters", "exercises", "solutions"):
        for path in sorted((ROOT / folder).glob("*.ipynb")):
            cells = json.loads(path.read_text())["cells"]
            code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
            assert "runpy" not in code, f"{path.name} runs a file by path"
            assert '"bench"' not in code and "bench/" not in code, f"{path.name} reaches bench/"
