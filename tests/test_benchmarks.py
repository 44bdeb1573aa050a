"""The benchmark scripts still run: each checks our layers against Keras's
(outputs before timing; on a CPU, `gpu_check.py` compares outputs and an
SGD step with Keras's own loop) and exits non-zero if they differ."""

import importlib.util
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_rnn_plus as krp

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _module(name):
    spec = importlib.util.spec_from_file_location(
        name, os.path.join(ROOT, "benchmarks", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(*args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3",
               KERAS_BACKEND="tensorflow")
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


@pytest.mark.slow
def test_run_prints_ratios():
    out = _run("benchmarks/run.py", "--shapes", "4x5x3x4", "--repeats", "1",
               "--bidirectional", "--memory")
    for label in ("krp.LSTM / keras.layers.LSTM", "krp.GRU / keras.layers.GRU",
                  "Bidirectional: krp.LSTM / keras LSTM",
                  "layer_norm / plain krp.LSTM",
                  "peak training memory of LSTM (MiB)",
                  "peak training memory of GRU (MiB)"):
        assert label in out


@pytest.mark.slow
def test_gpu_check_dry_run_on_cpu():
    out = _run("benchmarks/gpu_check.py", "--allow-cpu", "--checks-only")
    assert out.count(": ok") == 15 and "FAIL" not in out


@pytest.mark.parametrize("ours, same", [
    (lambda: krp.LSTM(4), True),
    # differs in training only (the timed train_on_batch path)
    (lambda: krp.LSTM(4, dropout=0.5), False),
    # differs at inference too
    (lambda: krp.LSTM(4, recurrent_activation="keras2_hard_sigmoid"), False),
])
def test_run_checks_outputs_before_timing(ours, same):
    """`run.py` refuses to time layers that compute something else, at
    inference or in a training step."""
    run = _module("run")
    shape = (3, 5, 2, 4)
    x = np.random.RandomState(1).rand(3, 5, 2).astype("float32")
    y = np.random.RandomState(2).rand(3, 4).astype("float32")
    ref = run.make_model(keras.layers.LSTM(4), shape)
    model = run.make_model(ours(), shape)
    check = lambda: run.check_same(  # noqa: E731
        "pair", ref, model, x, y, np.random.RandomState(0))
    if same:
        check()
    else:
        with pytest.raises(SystemExit, match="pair: .* differ"):
            check()


@pytest.mark.parametrize("args", [
    ["--repeats", "0"], ["--shapes", "32x50"], ["--shapes", "8x10x4x8,"]])
def test_run_refuses_bad_options(args):
    run = _module("run")
    with pytest.raises(SystemExit) as raised:
        run.main(args)
    assert raised.value.code == 2  # argparse's usage error
