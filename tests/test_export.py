"""`model.export()` (TensorFlow SavedModel) of models holding `krp.LSTM`.

A SavedModel must serve without the package: the fresh interpreter that
loads the exports imports only TensorFlow and NumPy, and checks at the end
that `keras_rnn_plus` was never imported. Predictions must match the
original model, also for batch sizes (and sequence lengths, where the
model allows them) other than those the model saw before export.
"""

import json

import keras
import numpy as np
import pytest
from testing import random_inputs, randomize_weights, run_python

import keras_rnn_plus as krp

STEPS, FEATURES, UNITS = 5, 3, 4
TRACE_BATCH = 2  # the batch size the model was called with before export
SERVE_BATCHES = (TRACE_BATCH, 7, 1)


def _plain():
    return keras.Sequential(
        [
            keras.Input((STEPS, FEATURES)),
            krp.LSTM(UNITS),
            keras.layers.Dense(2),
        ]
    )


def _return_sequences():
    return keras.Sequential(
        [
            keras.Input((STEPS, FEATURES)),
            krp.LSTM(UNITS, return_sequences=True, implementation=1),
            keras.layers.Dense(2),
        ]
    )


def _go_backwards():
    return keras.Sequential(
        [
            keras.Input((STEPS, FEATURES)),
            krp.LSTM(
                UNITS,
                go_backwards=True,
                return_sequences=True,
                recurrent_activation="keras2_hard_sigmoid",
            ),
            krp.LSTM(UNITS, go_backwards=True),
        ]
    )


def _masked_functional():
    """Variable length, Masking, return_state feeding a second LSTM."""
    inputs = keras.Input((None, FEATURES))
    masked = keras.layers.Masking(mask_value=0.0)(inputs)
    seq, h, c = krp.LSTM(UNITS, return_sequences=True, return_state=True)(
        masked
    )
    last = krp.LSTM(UNITS, go_backwards=True)(seq, initial_state=[h, c])
    outputs = keras.layers.Dense(1)(keras.layers.Concatenate()([last, c]))
    return keras.Model(inputs, outputs)


BUILDERS = {
    "plain": _plain,
    "return_sequences": _return_sequences,
    "go_backwards": _go_backwards,
    "masked_functional": _masked_functional,
}


def _inputs(name, batch, steps=STEPS):
    x = random_inputs((batch, steps, FEATURES), seed=batch * 10 + steps)
    if name == "masked_functional":
        # Padded sequences of different lengths (one fully padded but the
        # first step), zeros at the end.
        lengths = np.arange(batch) % steps + 1
        for i, n in enumerate(lengths):
            x[i, n:] = 0.0
    return x


SERVE_CODE = """
import json, sys
import numpy as np
import tensorflow as tf

root, names = {root!r}, {names!r}
report = {{}}
for name in names:
    served = tf.saved_model.load(f"{{root}}/{{name}}")
    data = np.load(f"{{root}}/{{name}}.npz")
    diffs = {{}}
    for key in sorted(k for k in data.files if k.startswith("x_")):
        got = served.serve(tf.constant(data[key])).numpy()
        expected = data["y_" + key[2:]]
        assert got.shape == expected.shape, (name, key, got.shape)
        diffs[key] = float(np.max(np.abs(got - expected)))
    report[name] = diffs
assert "keras_rnn_plus" not in sys.modules, "keras_rnn_plus was imported"
print("REPORT" + json.dumps(report))
"""


@pytest.fixture(scope="module")
def served_in_fresh_process(tmp_path_factory):
    """Export every model, then serve all exports in one fresh interpreter
    that never imports keras_rnn_plus; return its report."""
    root = tmp_path_factory.mktemp("exports")
    expected_keys = {}
    for name, build in BUILDERS.items():
        keras.utils.clear_session()
        model = build()
        for layer in model.layers:
            if isinstance(layer, krp.LSTM):
                randomize_weights(layer, scale=0.5)
        model(_inputs(name, TRACE_BATCH))
        model.export(str(root / name), verbose=False)
        arrays = {}
        cases = [(b, STEPS) for b in SERVE_BATCHES]
        if name == "masked_functional":
            cases += [(3, 8), (4, 2)]  # other sequence lengths
        for batch, steps in cases:
            x = _inputs(name, batch, steps)
            arrays[f"x_{batch}_{steps}"] = x
            arrays[f"y_{batch}_{steps}"] = model.predict(x, verbose=0)
        np.savez(root / f"{name}.npz", **arrays)
        expected_keys[name] = sorted(k for k in arrays if k.startswith("x_"))
    out = run_python(SERVE_CODE.format(root=str(root), names=list(BUILDERS)))
    line = [s for s in out.splitlines() if s.startswith("REPORT")][-1]
    return expected_keys, json.loads(line[len("REPORT") :])


@pytest.mark.parametrize("name", list(BUILDERS))
def test_exported_model_serves_without_package(name, served_in_fresh_process):
    expected_keys, report = served_in_fresh_process
    diffs = report[name]
    assert sorted(diffs) == expected_keys[name]
    assert any(k != f"x_{TRACE_BATCH}_{STEPS}" for k in diffs)
    for key, diff in diffs.items():
        assert diff <= 1e-5, (key, diff)


def test_masking_matters_in_masked_model():
    """Guard for the masked export case: the padded steps do change the
    output when the mask is dropped, so the export check is not vacuous."""
    model = _masked_functional()
    x = _inputs("masked_functional", 4)
    masked = model.predict(x, verbose=0)
    # The same layers (same weights) applied without the Masking layer.
    inputs = keras.Input((None, FEATURES))
    layers = [ly for ly in model.layers if isinstance(ly, krp.LSTM)]
    seq, h, c = layers[0](inputs)
    last = layers[1](seq, initial_state=[h, c])
    concat = [
        ly for ly in model.layers if isinstance(ly, keras.layers.Concatenate)
    ][0]
    dense = model.layers[-1]
    unmasked = keras.Model(inputs, dense(concat([last, c])))
    assert np.max(np.abs(unmasked.predict(x, verbose=0) - masked)) > 1e-3
