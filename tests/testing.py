"""Helpers shared by the tests: build a pair of layers with copied weights,
compare outputs and gradients, run code in a fresh Python process."""

import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import tensorflow as tf

ATOL = 1e-5
GRAD_ATOL = 1e-4


def random_inputs(shape, seed=0):
    return np.random.RandomState(seed).standard_normal(shape).astype("float32")


def as_list(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]


def assert_close(actual, expected, atol=ATOL, what="outputs", rtol=1e-6):
    actual, expected = as_list(actual), as_list(expected)
    assert len(actual) == len(expected), f"{what}: different lengths"
    for i, (a, e) in enumerate(zip(actual, expected)):
        np.testing.assert_allclose(
            np.asarray(a), np.asarray(e), rtol=rtol, atol=atol,
            err_msg=f"{what}[{i}]",
        )


def copied_pair(reference, ours, x, **call_kwargs):
    """Build both layers on `x` and give ours the reference's weights."""
    reference(x, **call_kwargs)
    ours(x, **call_kwargs)
    ours.set_weights(reference.get_weights())
    return reference, ours


def randomize_weights(layer, seed=1, scale=0.5):
    """Replace every weight with random values (biases included), so a
    parity test is not blind to zero-initialised slices."""
    rs = np.random.RandomState(seed)
    layer.set_weights(
        [scale * rs.standard_normal(w.shape).astype("float32")
         for w in layer.get_weights()]
    )


def gradients(layer, x, **call_kwargs):
    """Gradients of a fixed scalar function of every output with respect
    to the inputs and each trainable weight."""
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        outs = as_list(layer(x, **call_kwargs))
        loss = sum(
            tf.reduce_sum(tf.cast(o, "float32") * tf.sin(
                tf.reshape(tf.range(tf.size(o), dtype="float32"), o.shape)
            ))
            for o in outs
        )
    return tape.gradient(loss, [x] + list(layer.trainable_weights))


def run_python(code, cwd=None, timeout=300, backend="tensorflow"):
    """Run `code` in a fresh interpreter; return its stdout (checks rc)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND=backend)
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc.stdout


def check_mixed_precision_like_keras(make_pair, policy, implementation,
                                     **kwargs):
    """Under a mixed policy every rounding shows: outputs and weight
    gradients equal Keras's to the bit; so does the inputs' gradient in
    the fused mode (in the per-gate mode the order of the gates' sum in it
    differs, a rounding step)."""
    keras.mixed_precision.set_global_policy(policy)
    try:
        x = random_inputs((3, 6, 4))
        ref, ours = make_pair(x, return_sequences=True,
                              implementation=implementation, **kwargs)
        got = ours(x)
        assert got.dtype == policy.split("_")[1]
        np.testing.assert_array_equal(np.asarray(got, "float32"),
                                      np.asarray(ref(x), "float32"))
        g_ours, g_ref = [
            [np.asarray(g, "float32") for g in gradients(layer, x)]
            for layer in (ours, ref)
        ]
        for a, b in zip(g_ours[1:], g_ref[1:]):
            np.testing.assert_array_equal(a, b)
        ulp = 2.0 ** (-7 if policy == "mixed_bfloat16" else -10)
        np.testing.assert_allclose(
            g_ours[0], g_ref[0], rtol=0,
            atol=0 if implementation == 2 else 2 * ulp * abs(g_ref[0]).max())
    finally:
        keras.mixed_precision.set_global_policy("float32")


__all__ = [
    "ATOL", "GRAD_ATOL", "random_inputs", "as_list", "assert_close",
    "copied_pair", "randomize_weights", "gradients", "run_python",
    "check_mixed_precision_like_keras", "keras",
]


def run_tf1_cell(cell, x, state, seed, scale):
    """Give a TF1 cell (`tf_keras`'s legacy cells) random weights, then step
    it by hand over `x` `(batch, time, features)` from `state`. Returns the
    stacked outputs, the final state and the weights by TF1 name
    (`"kernel"`, `"projection/kernel"`, `"gates/bias"`, ...)."""
    cell(x[:, 0], state)  # build
    rs = np.random.RandomState(seed)
    for v in cell.weights:
        v.assign(scale * rs.standard_normal(v.shape))
    outputs = []
    for t in range(x.shape[1]):
        out, state = cell(x[:, t], state)
        outputs.append(out)
    named = {v.name.split(":")[0].split("/", 1)[1]: v.numpy()
             for v in cell.weights}
    return np.stack(outputs, 1), state, named
