"""ONNX and LiteRT exports of models with the package's layers.

Every model is exported with Keras's own `model.export(path,
format=...)`, then run with ONNX Runtime or the LiteRT interpreter
(`ai_edge_litert`, which has no TensorFlow "Select" ops), for batch sizes
and sequence lengths other than those it was traced with; predictions must
match Keras's at 1e-5. The exporters are optional (`pip install
".[export]"`): without them these tests skip.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf
from testing import random_inputs

import keras_rnn_plus as krp
from keras_rnn_plus import deploy

FEATURES, UNITS = 3, 4
TRACE_BATCH = 2  # the batch size the model was called with before export
ATOL = 1e-5


def _needs_onnx():
    pytest.importorskip("tf2onnx")
    return pytest.importorskip("onnxruntime")


def _needs_litert():
    return pytest.importorskip("ai_edge_litert.interpreter")


def _seq(*layers, steps=None, masking=False):
    inputs = keras.Input((steps, FEATURES))
    x = keras.layers.Masking(mask_value=0.0)(inputs) if masking else inputs
    for layer in layers:
        x = layer(x)
    return keras.Model(inputs, keras.layers.Dense(2)(x))


def _return_state():
    """Functional: return_state feeding a second layer's initial state."""
    inputs = keras.Input((None, FEATURES))
    seq, h, c = krp.LSTM(UNITS, return_sequences=True, return_state=True)(
        inputs
    )
    last = krp.LSTM(UNITS, go_backwards=True)(seq, initial_state=[h, c])
    outputs = keras.layers.Concatenate()([last, c])
    return keras.Model(inputs, outputs)


Bi = keras.layers.Bidirectional

# name -> (builder, whether the time dimension is free)
MODELS = {
    "lstm": lambda: _seq(krp.LSTM(UNITS)),
    "lstm_sequences": lambda: _seq(
        krp.LSTM(UNITS, return_sequences=True, implementation=1)
    ),
    "lstm_go_backwards": lambda: _seq(
        krp.LSTM(UNITS, go_backwards=True, return_sequences=True,
                 recurrent_activation="keras2_hard_sigmoid")
    ),
    "gru": lambda: _seq(krp.GRU(UNITS)),
    "gru_reset_before": lambda: _seq(
        krp.GRU(UNITS, reset_after=False, return_sequences=True)
    ),
    "peephole_cell_clip": lambda: _seq(
        krp.LSTM(UNITS, use_peepholes=True, cell_clip=0.5)
    ),
    "peephole_lstm": lambda: _seq(krp.PeepholeLSTM(UNITS)),
    "projection_clip": lambda: _seq(
        krp.LSTM(UNITS, num_proj=3, proj_clip=0.3, return_sequences=True)
    ),
    "forget_bias": lambda: _seq(krp.LSTM(UNITS, forget_bias=1.0)),
    "cifg_peephole": lambda: _seq(
        krp.LSTM(UNITS, coupled_input_forget=True, use_peepholes=True)
    ),
    "no_forget_gate": lambda: _seq(krp.LSTM(UNITS, use_forget_gate=False)),
    "layer_norm": lambda: _seq(krp.LSTM(UNITS, layer_norm=True)),
    "bidirectional": lambda: _seq(
        Bi(krp.LSTM(UNITS, return_sequences=True)),
        Bi(krp.GRU(UNITS), merge_mode="sum"),
    ),
    "stacked": lambda: _seq(
        krp.LSTM(UNITS, return_sequences=True),
        krp.LSTM(UNITS, return_sequences=True, use_peepholes=True),
        krp.GRU(UNITS),
    ),
    "masked": lambda: _seq(
        krp.LSTM(UNITS, return_sequences=True, zero_output_for_mask=True),
        krp.GRU(UNITS),
        masking=True,
    ),
    "return_state": _return_state,
    "dropout_trained": lambda: _seq(
        krp.LSTM(UNITS, dropout=0.3, recurrent_dropout=0.3)
    ),
    "fixed_length": lambda: _seq(krp.LSTM(UNITS), steps=5),
    "no_bias_relu": lambda: _seq(
        krp.LSTM(UNITS, use_bias=False, activation="relu",
                 return_sequences=True),
        krp.GRU(UNITS, use_bias=False, activation="relu"),
    ),
}

# The recurrent ops each ONNX export must hold: one native ONNX `LSTM` /
# `GRU` op per layer where ONNX has one for the configuration, else a
# `Loop` (every other model).
ONNX_NATIVE = {
    "lstm": {"LSTM"},
    "lstm_sequences": {"LSTM"},
    "lstm_go_backwards": {"LSTM"},  # Keras 2's hard sigmoid: HardSigmoid
    "gru": {"GRU"},
    "forget_bias": {"LSTM"},  # folded into the bias
    "bidirectional": {"LSTM", "GRU"},
    "stacked": {"LSTM", "GRU", "Loop"},  # the peephole layer is a Loop
    "return_state": {"LSTM"},
    "dropout_trained": {"LSTM"},
    "fixed_length": {"LSTM"},
    "no_bias_relu": {"LSTM", "GRU"},
}


def _inputs(batch, steps, masked=False, seed=0):
    x = random_inputs((batch, steps, FEATURES), seed=seed + 7 * batch + steps)
    if masked:  # right-padded sequences of different lengths
        for i, n in enumerate(np.arange(batch) % steps + 1):
            x[i, n:] = 0.0
    return x


def _build(name):
    model = MODELS[name]()
    rs = np.random.RandomState(3)
    for layer in model.layers:  # random weights, biases included
        layer.set_weights(
            [0.5 * rs.standard_normal(w.shape).astype("float32")
             for w in layer.get_weights()]
        )
    steps = model.inputs[0].shape[1]
    model(_inputs(TRACE_BATCH, steps or 5))
    return model


def _cases(model, name):
    """(batch, steps) pairs to serve: other batches, other lengths."""
    fixed = model.inputs[0].shape[1]
    steps = [fixed] if fixed else [5, 9, 1]
    return [(b, s) for b in (TRACE_BATCH, 7, 1) for s in steps[:1]] + [
        (3, s) for s in steps[1:]
    ]


def _run_onnx(path, x):
    ort = _needs_onnx()
    session = ort.InferenceSession(
        str(path), providers=["CPUExecutionProvider"]
    )
    name = session.get_inputs()[0].name
    return session.run(None, {name: x})[0]


def onnx_ops(path):
    import onnx

    return sorted({n.op_type for n in onnx.load(str(path)).graph.node})


def litert_ops(interpreter):
    return sorted({op["op_name"] for op in interpreter._get_ops_details()})


def _run_litert(interpreter, x):
    inp = interpreter.get_input_details()[0]
    interpreter.resize_tensor_input(inp["index"], x.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(inp["index"], x)
    interpreter.invoke()
    return interpreter.get_tensor(
        interpreter.get_output_details()[0]["index"]
    )


def _check(model, name, run):
    for batch, steps in _cases(model, name):
        x = _inputs(batch, steps, masked=name == "masked")
        expected = model.predict(x, verbose=0)
        got = run(x)
        assert got.shape == expected.shape, (batch, steps)
        np.testing.assert_allclose(
            got, expected, atol=ATOL, rtol=0, err_msg=f"{(batch, steps)}"
        )


@pytest.mark.parametrize("name", list(MODELS))
def test_onnx_export(name, tmp_path):
    _needs_onnx()
    model = _build(name)
    path = tmp_path / f"{name}.onnx"
    model.export(str(path), format="onnx", verbose=False)
    recurrent = set(onnx_ops(path)) & {"LSTM", "GRU", "Loop"}
    assert recurrent == ONNX_NATIVE.get(name, {"Loop"})
    _check(model, name, lambda x: _run_onnx(path, x))


def test_onnx_export_mixed_precision_is_a_loop(tmp_path):
    """Under `mixed_float16` the float16 casts keep tf2onnx from the
    native op: a `Loop`, with Keras's predictions (float16 precision)."""
    _needs_onnx()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = _seq(krp.LSTM(UNITS, return_sequences=True), krp.GRU(UNITS))
        x = _inputs(3, 5)
        expected = model.predict(x, verbose=0)
        path = tmp_path / "mixed.onnx"
        model.export(str(path), format="onnx", verbose=False)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert set(onnx_ops(path)) & {"LSTM", "GRU", "Loop"} == {"Loop"}
    np.testing.assert_allclose(
        _run_onnx(path, x).astype("float32"), expected.astype("float32"),
        atol=5e-3,
    )


def test_onnx_export_float64_is_a_loop(tmp_path):
    """ONNX Runtime's `LSTM` and `GRU` kernels have no float64 version
    (Keras's own LSTM exports as that op there, which ONNX Runtime then
    refuses to run): under `float64` ours export as a `Loop` that runs,
    with Keras's predictions."""
    _needs_onnx()
    keras.config.set_dtype_policy("float64")
    try:
        model = _seq(krp.LSTM(UNITS, return_sequences=True), krp.GRU(UNITS))
        x = _inputs(3, 5)  # a float32 input, cast by the layers
        expected = model.predict(x, verbose=0)
        assert expected.dtype == np.float64
        path = tmp_path / "float64.onnx"
        model.export(str(path), format="onnx", verbose=False)
    finally:
        keras.config.set_dtype_policy("float32")
    assert set(onnx_ops(path)) & {"LSTM", "GRU", "Loop"} == {"Loop"}
    np.testing.assert_allclose(_run_onnx(path, x), expected, atol=1e-10)


# The LiteRT grid repeats the ONNX one; the default run keeps a sample of
# it, `pytest -m slow` (in CI) the rest.
LITERT_DEFAULT = {"lstm", "gru", "layer_norm", "bidirectional", "masked"}


@pytest.mark.parametrize(
    "name",
    [n if n in LITERT_DEFAULT else pytest.param(n, marks=pytest.mark.slow)
     for n in MODELS],
)
def test_litert_export(name, tmp_path):
    litert = _needs_litert()
    model = _build(name)
    path = tmp_path / f"{name}.tflite"
    model.export(str(path), format="litert", verbose=False)
    interpreter = litert.Interpreter(model_path=str(path))
    ops = litert_ops(interpreter)
    # A time loop of builtin ops: not unrolled, no Select (Flex) ops.
    assert "WHILE" in ops, ops
    assert not any(op.startswith("Flex") or op in ("CUSTOM", "DELEGATE")
                   for op in ops), ops
    _check(model, name, lambda x: _run_litert(interpreter, x))


def test_masking_matters():
    """The masked case is not vacuous: without the mask, other numbers."""
    model = _build("masked")
    x = _inputs(4, 6, masked=True)
    inputs = keras.Input((None, FEATURES))
    y = inputs
    for layer in model.layers[2:]:
        y = layer(y)
    unmasked = keras.Model(inputs, y)
    diff = np.abs(unmasked.predict(x, verbose=0) - model.predict(x, verbose=0))
    assert diff.max() > 1e-3


@pytest.mark.parametrize("fmt", ["onnx", "litert"])
def test_deploy_export(fmt, tmp_path):
    """`krp.deploy.export`: the same artifacts, LiteRT builtins enforced."""
    if fmt == "onnx":
        _needs_onnx()
    else:
        litert = _needs_litert()
    model = _build("stacked")
    path = tmp_path / ("m.onnx" if fmt == "onnx" else "m.tflite")
    assert deploy.export(model, path, format=fmt) == path
    if fmt == "onnx":
        _check(model, "stacked", lambda x: _run_onnx(path, x))
    else:
        interpreter = litert.Interpreter(model_path=str(path))
        _check(model, "stacked", lambda x: _run_litert(interpreter, x))


def test_deploy_export_takes_a_litert_target_spec(tmp_path):
    """`target_spec` as Keras's exporter takes it: a dict or a
    `tf.lite.TargetSpec`."""
    litert = _needs_litert()
    import tensorflow as tf

    model = _build("lstm")
    spec = tf.lite.TargetSpec(supported_ops=[tf.lite.OpsSet.TFLITE_BUILTINS])
    path = tmp_path / "m.tflite"
    deploy.export(model, path, format="litert", target_spec=spec)
    interpreter = litert.Interpreter(model_path=str(path))
    _check(model, "lstm", lambda x: _run_litert(interpreter, x))


def test_deploy_export_rejects_unknown_format(tmp_path):
    with pytest.raises(ValueError, match="format must be one of"):
        deploy.export(_build("lstm"), tmp_path / "m", format="tflite")


def test_deploy_export_takes_a_model_not_a_layer(tmp_path):
    layer = krp.LSTM(UNITS)
    layer(_inputs(2, 5))
    with pytest.raises(TypeError, match="model must be a Keras model"):
        deploy.export(layer, tmp_path / "m.onnx")


def test_litert_builtins_enforced(tmp_path):
    """Keras's own loop (keras.layers.RNN over our cell) needs Select ops:
    `deploy.export` fails at conversion instead of writing a model that
    the LiteRT interpreter cannot run."""
    _needs_litert()
    model = _seq(keras.layers.RNN(krp.LSTMCell(UNITS)))
    model(_inputs(2, 5))
    with pytest.raises(Exception, match="TensorList|Select|Flex|legalize"):
        deploy.export(model, tmp_path / "m.tflite", format="litert")


def _stateful():
    model = keras.Sequential(
        [keras.Input((5, FEATURES), batch_size=2),
         krp.LSTM(UNITS, stateful=True)]
    )
    model(_inputs(2, 5))
    model.layers[0].reset_state()
    return model


def test_stateful_onnx_is_refused(tmp_path):
    """ONNX would freeze the states: a clear error, with Keras's exporter
    and with `deploy.export`."""
    _needs_onnx()
    model = _stateful()
    for export in (
        lambda: model.export(str(tmp_path / "a.onnx"), format="onnx",
                             verbose=False),
        lambda: deploy.export(model, tmp_path / "b.onnx", format="onnx"),
    ):
        with pytest.raises(ValueError, match="stateful"):
            export()


@pytest.mark.parametrize("layer", [
    lambda: keras.layers.RNN(krp.LSTMCell(UNITS), stateful=True),
    lambda: keras.layers.GRU(UNITS, stateful=True),
], ids=["RNN(krp.LSTMCell)", "keras.layers.GRU"])
def test_stateful_keras_loops_refused_for_onnx(tmp_path, layer):
    """`deploy.export` checks Keras's own stateful loops too: their ONNX
    file would freeze the states as well (the second call differs)."""
    _needs_onnx()
    model = keras.Sequential([keras.Input((5, FEATURES), batch_size=2),
                              layer()])
    model(_inputs(2, 5))
    with pytest.raises(ValueError, match="stateful"):
        deploy.export(model, tmp_path / "m.onnx", format="onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_stateful_litert_with_open_batch_is_refused(tmp_path):
    """Keras's LiteRT exporter leaves the batch open: the file would
    broadcast a batch of 1 against the states' batch of 2, silently. A
    clear error instead, naming the way that fixes the batch."""
    _needs_litert()
    model = _stateful()
    with pytest.raises(ValueError, match="stateful.*deploy.export"):
        model.export(str(tmp_path / "m.tflite"), format="litert",
                     verbose=False)


def test_stateful_litert_carries_states(tmp_path):
    """LiteRT keeps the states in variables: successive invocations
    continue the sequence, as successive `predict` calls do."""
    litert = _needs_litert()
    model = _stateful()
    x1, x2 = _inputs(2, 5, seed=1), _inputs(2, 5, seed=2)
    path = tmp_path / "m.tflite"
    deploy.export(model, path, format="litert")
    y1 = model.predict(x1, verbose=0)
    y2 = model.predict(x2, verbose=0)
    interpreter = litert.Interpreter(model_path=str(path))
    np.testing.assert_allclose(_run_litert(interpreter, x1), y1, atol=ATOL)
    np.testing.assert_allclose(_run_litert(interpreter, x2), y2, atol=ATOL)
    # The states' batch is the file's: another one is refused, not
    # broadcast against the states.
    (spec,) = interpreter.get_input_details()
    assert list(spec["shape_signature"]) == [2, *x1.shape[1:]]
    with pytest.raises(ValueError, match="mismatch"):
        interpreter.set_tensor(spec["index"], x1[:1])


# -- the loop itself ---------------------------------------------------------


@pytest.mark.parametrize("fmt", [None, "litert"])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("zero_output_for_mask", [False, True])
@pytest.mark.parametrize("return_all_outputs", [False, True])
def test_rnn_loop_matches_backend(
    fmt, masked, go_backwards, zero_output_for_mask, return_all_outputs
):
    """`rnn_loop` (both kinds of output list) against Keras's backend
    loop, bit for bit."""
    from keras.src import backend

    rs = np.random.RandomState(0)
    x = tf.constant(rs.standard_normal((6, 3, 2)).astype("float32"))
    mask = tf.constant(rs.rand(6, 3) > 0.4) if masked else None
    kernel = tf.constant(rs.standard_normal((2, 2)).astype("float32"))

    def step(x_t, states):
        h = tf.tanh(x_t + states[0] @ kernel) + states[1]
        return h, [h, 0.5 * states[1] + x_t]

    init = [tf.zeros((3, 2)), tf.ones((3, 2))]
    kwargs = dict(
        mask=mask,
        go_backwards=go_backwards,
        zero_output_for_mask=zero_output_for_mask,
        return_all_outputs=return_all_outputs,
    )

    @tf.function
    def ours():
        with deploy._exporting(fmt):
            return deploy.rnn_loop(step, x, init, **kwargs)

    expected = backend.rnn(
        step, x, init, time_major=True, input_length=6, **kwargs
    )
    got = ours()
    for g, e in zip(tf.nest.flatten(got), tf.nest.flatten(expected)):
        np.testing.assert_array_equal(g.numpy(), e.numpy())


# -- the README's comparison rows ----------------------------------------------


def _exports(model, tmp_path, name):
    """`{"onnx": (works, ops), "litert": (works, ops)}` for `model`."""
    ort, litert = _needs_onnx(), _needs_litert()
    x = _inputs(3, 5)
    expected = model.predict(x, verbose=0)
    result = {}
    path = tmp_path / f"{name}.onnx"
    model.export(str(path), format="onnx", verbose=False)
    session = ort.InferenceSession(str(path))
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    result["onnx"] = (np.allclose(got, expected, atol=ATOL), onnx_ops(path))
    path = tmp_path / f"{name}.tflite"
    model.export(str(path), format="litert", verbose=False)
    interpreter = litert.Interpreter(model_path=str(path))
    try:
        got = _run_litert(interpreter, x)
        works = np.allclose(got, expected, atol=ATOL)
    except RuntimeError as e:  # Select (Flex) ops: no kernel here
        assert "Select TensorFlow op" in str(e)
        works = False
    result["litert"] = (works, litert_ops(interpreter))
    return result


@pytest.mark.slow
def test_readme_comparison_rows(tmp_path):
    """Keras's layers as the README's table reports them (they may change
    with Keras or the exporters), next to ours where they differ."""
    rows = {
        "keras_lstm": (_seq(keras.layers.LSTM(UNITS)), (True, False)),
        "keras_gru": (_seq(keras.layers.GRU(UNITS)), (True, False)),
        "keras_lstm_unrolled": (
            _seq(keras.layers.LSTM(UNITS, unroll=True), steps=5),
            (True, True),
        ),
        "krp_lstm_unrolled": (
            _seq(krp.LSTM(UNITS, unroll=True), steps=5), (True, True)
        ),
        "keras_rnn_over_krp_cell": (
            _seq(keras.layers.RNN(krp.LSTMCell(UNITS))), (True, False)
        ),
        "krp_lstm": (_seq(krp.LSTM(UNITS)), (True, True)),
        "krp_gru": (_seq(krp.GRU(UNITS)), (True, True)),
    }
    for name, (model, (onnx_works, litert_works)) in rows.items():
        model(_inputs(TRACE_BATCH, 5))
        result = _exports(model, tmp_path, name)
        assert result["onnx"][0] == onnx_works, (name, result)
        assert result["litert"][0] == litert_works, (name, result)
        if name == "keras_lstm":
            assert "LSTM" in result["onnx"][1]
        if name == "keras_gru":
            assert "Loop" in result["onnx"][1]
        if name.startswith("krp_") and not name.endswith("unrolled"):
            assert name[4:].upper() in result["onnx"][1]  # native op
        if name.endswith("unrolled"):
            assert "Loop" not in result["onnx"][1]
            assert "WHILE" not in result["litert"][1]
