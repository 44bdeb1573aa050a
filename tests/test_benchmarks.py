"""The benchmark scripts still run: each checks our layers against Keras's
(outputs before timing; on a CPU, `gpu_check.py` compares outputs and an
SGD step with Keras's own loop) and exits non-zero if they differ."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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
