"""krp.LSTM / krp.LSTMCell against keras.layers.LSTM: signature, weights,
outputs, states, gradients, masking, states, dropout, losses, errors."""

import importlib
import inspect
import itertools
import json

import keras
import numpy as np
import pytest
import reference
import tensorflow as tf
from testing import (
    GRAD_ATOL,
    assert_close,
    check_mixed_precision_like_keras,
    copied_pair,
    gradients,
    random_inputs,
    randomize_weights,
)

import keras_rnn_plus as krp

ACTIVATIONS = ["tanh", "sigmoid", "hard_sigmoid", "relu", "linear"]
UNITS = 5


def make_pair(x, scale=0.5, **kwargs):
    ref, ours = keras.layers.LSTM(UNITS, **kwargs), krp.LSTM(UNITS, **kwargs)
    ref(x)
    randomize_weights(ref, scale=scale)
    ours(x)
    ours.set_weights(ref.get_weights())
    return ref, ours


# -- signature --------------------------------------------------------------
LSTM_ORDER = """units activation recurrent_activation use_bias
kernel_initializer recurrent_initializer bias_initializer unit_forget_bias
kernel_regularizer recurrent_regularizer bias_regularizer
activity_regularizer kernel_constraint recurrent_constraint bias_constraint
dropout recurrent_dropout implementation return_sequences return_state
go_backwards stateful unroll seed use_cudnn use_peepholes forget_bias
cell_clip num_proj proj_clip use_forget_gate coupled_input_forget layer_norm
kwargs""".split()


def test_lstm_signature_order_and_keras_defaults():
    ours = inspect.signature(krp.LSTM).parameters
    assert list(ours) == LSTM_ORDER
    for name, p in inspect.signature(keras.layers.LSTM).parameters.items():
        assert name in ours, name
        assert ours[name].default == p.default, name
    assert ours["implementation"].default == 2


def test_cell_signature_matches_keras_cell():
    ours = inspect.signature(krp.LSTMCell).parameters
    theirs = inspect.signature(keras.layers.LSTMCell).parameters
    assert set(theirs) <= set(ours)
    for name, p in theirs.items():
        assert ours[name].default == p.default, name
    assert ours["implementation"].default == 2


def test_layer_accepts_rnn_arguments():
    layer = krp.LSTM(3, zero_output_for_mask=True, name="x", trainable=False)
    assert layer.zero_output_for_mask and not layer.trainable
    assert layer.get_config()["zero_output_for_mask"] is True


# -- weights ----------------------------------------------------------------
def test_weights_names_shapes_and_order():
    x = random_inputs((2, 3, 7))
    ref, ours = keras.layers.LSTM(UNITS), krp.LSTM(UNITS)
    ref(x), ours(x)
    assert [w.name for w in ours.weights] == [w.name for w in ref.weights]
    assert [w.shape for w in ours.weights] == [w.shape for w in ref.weights]
    assert ours.weights[0].shape == (7, 4 * UNITS)
    assert ours.weights[1].shape == (UNITS, 4 * UNITS)
    assert ours.weights[2].shape == (4 * UNITS,)
    ref.set_weights(ours.get_weights())  # and back


@pytest.mark.parametrize("unit_forget_bias", [True, False])
def test_bias_initialisation_matches_keras(unit_forget_bias):
    x = random_inputs((2, 3, 4))
    init = keras.initializers.RandomNormal(seed=3)
    kw = dict(bias_initializer=init, unit_forget_bias=unit_forget_bias)
    ref, ours = keras.layers.LSTM(UNITS, **kw), krp.LSTM(UNITS, **kw)
    ref(x), ours(x)
    bias = ours.get_weights()[2]
    np.testing.assert_array_equal(bias, ref.get_weights()[2])
    forget = bias[UNITS:2 * UNITS]
    assert np.all(forget == 1.0) == unit_forget_bias


# -- the parity grid ----------------------------------------------------------
GRID = [
    dict(activation=a, recurrent_activation=r)
    for a, r in itertools.product(ACTIVATIONS, ACTIVATIONS)
] + [
    dict(use_bias=b, unit_forget_bias=u, implementation=i,
         return_sequences=s, return_state=st, go_backwards=g, unroll=ur)
    for b, u, i, s, st, g, ur in itertools.product(
        [True, False], [True, False], [1, 2], [True, False], [True, False],
        [True, False], [True, False])
    if (b + u + i + s + st + g + ur) % 3 == 0  # a spread third of the cube
]


@pytest.mark.parametrize("kwargs", GRID, ids=lambda k: "-".join(
    f"{key[:6]}={v}" for key, v in k.items()))
def test_parity_outputs_states_and_gradients(kwargs):
    x = random_inputs((3, 6, 4))
    unbounded = {"relu", "linear"} & set(kwargs.values())
    ref, ours = make_pair(x, scale=0.2 if unbounded else 0.5, **kwargs)
    assert_close(ours(x), ref(x))
    assert_close(gradients(ours, x), gradients(ref, x), atol=GRAD_ATOL,
                 what="gradients")


@pytest.mark.parametrize("implementation", [1, 2])
def test_implementations_are_both_real_and_equal(implementation,
                                                monkeypatch):
    x = random_inputs((3, 6, 4))
    ref, ours = make_pair(x, implementation=implementation,
                          return_sequences=True)
    assert ours.cell.per_gate == (implementation == 1)
    assert_close(ours(x), ref(x))
    assert ours.get_config()["implementation"] == implementation
    # Count the products of one cell step: per gate, 4 input + 4
    # recurrent; fused, 1 input + 1 recurrent.
    products = []
    matmul = keras.ops.matmul
    monkeypatch.setattr(keras.ops, "matmul",
                        lambda a, b: products.append(1) or matmul(a, b))
    ours.cell(x[:, 0], [np.zeros((3, UNITS), "float32")] * 2)
    assert len(products) == (8 if implementation == 1 else 2)


def test_cell_inside_keras_rnn_equals_keras_lstm():
    x = random_inputs((3, 6, 4))
    ref = keras.layers.LSTM(UNITS, return_sequences=True)
    ours = keras.layers.RNN(krp.LSTMCell(UNITS), return_sequences=True)
    ref(x)
    randomize_weights(ref)
    ours(x)
    ours.set_weights(ref.get_weights())
    assert_close(ours(x), ref(x))


# -- masking ------------------------------------------------------------------
def padded_batch(lengths, steps=7, features=4, left=False):
    x = random_inputs((len(lengths), steps, features))
    mask = np.zeros((len(lengths), steps), bool)
    for row, n in enumerate(lengths):
        if left:
            mask[row, steps - n:] = True
        else:
            mask[row, :n] = True
    x[~mask] = 0.0
    return x, mask


@pytest.mark.parametrize("left", [False, True])
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("zero_output_for_mask", [False, True])
def test_explicit_mask_left_right_and_empty_rows(left, go_backwards,
                                                 zero_output_for_mask):
    x, mask = padded_batch([7, 3, 0, 5], left=left)
    kw = dict(return_sequences=True, return_state=True,
              go_backwards=go_backwards,
              zero_output_for_mask=zero_output_for_mask)
    ref, ours = make_pair(x, **kw)
    assert_close(ours(x, mask=mask), ref(x, mask=mask))
    assert_close(gradients(ours, x, mask=mask), gradients(ref, x, mask=mask),
                 atol=GRAD_ATOL, what="gradients")


def _masked_model(layer_factory, source):
    if source == "masking":
        inp = keras.Input((7, 4))
        seq = keras.layers.Masking(0.0)(inp)
    else:
        inp = keras.Input((7,), dtype="int32")
        seq = keras.layers.Embedding(10, 4, mask_zero=True,
                                     name="emb")(inp)
    out = layer_factory(UNITS, return_sequences=True, name="rnn")(seq)
    return keras.Model(inp, out)


@pytest.mark.parametrize("source", ["masking", "embedding"])
@pytest.mark.parametrize("left", [False, True])
def test_mask_from_masking_and_embedding_layers(source, left):
    x, mask = padded_batch([7, 2, 0], left=left)
    if source == "embedding":
        x = np.where(mask, np.arange(1, 8)[None, :] % 9 + 1, 0).astype("int32")
    ref = _masked_model(keras.layers.LSTM, source)
    ours = _masked_model(krp.LSTM, source)
    randomize_weights(ref)
    ours.set_weights(ref.get_weights())
    assert_close(ours(x), ref(x))


# -- initial and carried states -----------------------------------------------
@pytest.mark.parametrize("state_batch", [3, 1])
def test_initial_state_call_argument(state_batch):
    """States for each sequence, or of batch 1 for every sequence (Keras's
    loop broadcasts them), eager and traced with an unknown batch."""
    x = random_inputs((3, 6, 4))
    h0 = random_inputs((state_batch, UNITS), 5)
    c0 = random_inputs((state_batch, UNITS), 6)
    ref, ours = make_pair(x, return_state=True)
    want = ref(x, initial_state=[h0, c0])
    assert_close(ours(x, initial_state=[h0, c0]), want)
    traced = tf.function(lambda x: ours(x, initial_state=[h0, c0]))
    traced = traced.get_concrete_function(tf.TensorSpec((None, 6, 4)))
    assert_close(traced(tf.constant(x)), want)


def test_initial_state_as_functional_inputs():
    def model(factory):
        x = keras.Input((6, 4))
        h, c = keras.Input((UNITS,)), keras.Input((UNITS,))
        y = factory(UNITS, return_sequences=True)(x, initial_state=[h, c])
        return keras.Model([x, h, c], y)

    ref, ours = model(keras.layers.LSTM), model(krp.LSTM)
    randomize_weights(ref)
    ours.set_weights(ref.get_weights())
    args = [random_inputs((3, 6, 4)), random_inputs((3, UNITS), 2),
            random_inputs((3, UNITS), 3)]
    assert_close(ours.predict(args, verbose=0), ref.predict(args, verbose=0))


@pytest.mark.parametrize("reset", ["reset_state", "reset_states"])
def test_stateful_batches_then_reset(reset):
    batches = [random_inputs((2, 5, 3), s) for s in range(3)]
    ref = keras.layers.LSTM(UNITS, stateful=True, return_state=True)
    ours = krp.LSTM(UNITS, stateful=True, return_state=True)
    copied_pair(ref, ours, batches[0])
    randomize_weights(ref)
    ours.set_weights(ref.get_weights())
    getattr(ref, reset)(), getattr(ours, reset)()
    for b in batches:  # states carry over from batch to batch
        assert_close(ours(b), ref(b))
    getattr(ours, reset)()
    getattr(ref, reset)()
    assert_close(np.stack([v.numpy() for v in ours.states]),
                 np.zeros((2, 2, UNITS)))
    assert_close(ours(batches[1]), ref(batches[1]))


# -- dropout ------------------------------------------------------------------
DROPOUTS = [dict(dropout=0.3), dict(recurrent_dropout=0.4),
            dict(dropout=0.25, recurrent_dropout=0.35)]


@pytest.mark.parametrize("implementation", [1, 2])
@pytest.mark.parametrize("rates", DROPOUTS)
def test_dropout_off_at_inference_and_seeded_like_keras(implementation,
                                                        rates):
    x = random_inputs((4, 6, 3))
    # Keras's own layer crashes with implementation=1 and dropout in
    # training on its cuDNN-attempt path; its default loop is the reference.
    kw = dict(seed=11, implementation=implementation, return_sequences=True)
    ref = keras.layers.LSTM(UNITS, use_cudnn=False, **kw, **rates)
    ours = krp.LSTM(UNITS, **kw, **rates)
    ref(x)
    randomize_weights(ref)
    ours(x)
    ours.set_weights(ref.get_weights())
    plain = keras.layers.LSTM(UNITS, return_sequences=True)
    plain(x)
    plain.set_weights(ref.get_weights())
    # Inference: no dropout at all (both layers draw their masks on every
    # call, so they are called equally often to keep their seeds in step).
    assert_close(ours(x), plain(x))
    assert_close(ref(x), plain(x))
    assert_close(ours(x, training=True), ref(x, training=True))
    y = np.asarray(ours(x, training=True))
    assert not np.allclose(y, np.asarray(plain(x)), atol=1e-3)


@pytest.mark.parametrize("return_sequences", [True, False])
@pytest.mark.parametrize("kernel_order", ["processing", "inputs"])
def test_fused_kernel_with_go_backwards_returns_keras_loop_order(
        return_sequences, kernel_order, monkeypatch):
    """With a GPU faked, the backend's fused LSTM is replaced by a NumPy
    LSTM (the paper's equations) that, given `go_backwards`, returns its
    outputs in the order of processing (as TensorFlow's and PyTorch's
    cuDNN paths do) or in the inputs' order (as Keras 3.15's JAX cuDNN
    LSTM does). Either way the layer returns what Keras's own loop
    returns: the reversed sequence's outputs, in processing order."""
    tf_rnn = importlib.import_module("keras.src.backend.tensorflow.rnn")
    lstm_module = importlib.import_module("keras_rnn_plus.lstm")
    calls = []

    def fake_lstm(inputs, h0, c0, mask, kernel, recurrent_kernel, bias,
                  return_sequences, go_backwards, **_):
        calls.append(go_backwards)
        x = np.asarray(inputs)[:, ::-1] if go_backwards else inputs
        weights = dict(kernel=kernel, recurrent_kernel=recurrent_kernel,
                       bias=bias)
        outputs, h, c = reference.lstm(x, weights, h0=h0, c0=c0)
        if go_backwards and kernel_order == "inputs":
            outputs = outputs[:, ::-1]
        last = h
        outputs = outputs if return_sequences else h[:, None]
        return tuple(tf.constant(v, tf.float32) for v in (last, outputs)) + (
            [tf.constant(h, tf.float32), tf.constant(c, tf.float32)],)

    x = random_inputs((3, 5, 4))
    kwargs = dict(go_backwards=True, return_sequences=return_sequences,
                  return_state=True)
    ref = keras.layers.LSTM(UNITS, use_cudnn=False, **kwargs)
    ref(x)
    randomize_weights(ref)
    ref, ours = copied_pair(ref, krp.LSTM(UNITS, **kwargs), x)
    monkeypatch.setattr(tf_rnn, "_is_gpu_available", lambda: True)
    monkeypatch.setattr(lstm_module._backend, "lstm", fake_lstm)
    got = ours(x)
    assert calls, "the fused kernel was not called"
    monkeypatch.undo()
    assert_close(got, ref(x))


def test_dropout_same_mask_at_every_timestep():
    # With a zero recurrent kernel and the forget gate shut (bias -100),
    # h(t) depends on x(t) only; equal inputs at every step then give equal
    # outputs at every step exactly when the input dropout mask is the same
    # at each step (a fresh mask per step would change them).
    layer = krp.LSTM(UNITS, dropout=0.5, seed=1, return_sequences=True)
    x = np.repeat(random_inputs((2, 1, 6)), 5, axis=1)
    layer(x)
    kernel, _, bias = layer.get_weights()
    bias[UNITS:2 * UNITS] = -100.0
    layer.set_weights([kernel, np.zeros((UNITS, 4 * UNITS)), bias])
    y = np.asarray(layer(x, training=True))
    assert_close(y, np.repeat(y[:, :1], 5, axis=1))
    assert not np.allclose(y, np.asarray(layer(x)), atol=1e-3)


# -- losses, constraints, training ---------------------------------------------
def test_regularizer_losses_equal_keras():
    kw = dict(kernel_regularizer=keras.regularizers.L2(0.01),
              recurrent_regularizer=keras.regularizers.L1(0.02),
              bias_regularizer=keras.regularizers.L1L2(0.03, 0.04),
              activity_regularizer=keras.regularizers.L2(0.05))
    x = random_inputs((3, 4, 2))
    ref, ours = make_pair(x, **kw)
    ref(x), ours(x)
    assert len(ours.losses) == len(ref.losses) == 4
    assert_close(sorted(float(v) for v in ours.losses),
                 sorted(float(v) for v in ref.losses))


def test_constraints_applied_after_optimizer_step():
    con = dict(kernel_constraint=keras.constraints.MaxNorm(0.1),
               recurrent_constraint=keras.constraints.NonNeg(),
               bias_constraint=keras.constraints.MinMaxNorm(0.0, 0.2))

    def fitted(factory):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((4, 3)), factory(UNITS, **con),
                                  keras.layers.Dense(1)])
        return model

    ref, ours = fitted(keras.layers.LSTM), fitted(krp.LSTM)
    ours.set_weights(ref.get_weights())
    x, y = random_inputs((8, 4, 3)), random_inputs((8, 1), 1)
    for m in (ref, ours):
        m.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse")
        m.train_on_batch(x, y)
    assert_close(ours.get_weights(), ref.get_weights(), atol=1e-5)
    assert np.all(ours.layers[0].get_weights()[1] >= 0)


@pytest.mark.parametrize("kind", ["functional", "sequential"])
def test_fit_in_sequential_and_functional_models(kind):
    """`fit` (Adam, mini-batches, 3 epochs) follows Keras's LSTM in the
    same model: the same losses and final weights."""
    x, y = random_inputs((16, 5, 3)), random_inputs((16, 1), 1)

    def model(lstm):
        if kind == "sequential":
            return keras.Sequential([keras.Input((5, 3)), lstm(4),
                                     keras.layers.Dense(1)])
        inp = keras.Input((5, 3))
        return keras.Model(inp, keras.layers.Dense(1)(lstm(4)(inp)))

    ref, ours = model(keras.layers.LSTM), model(krp.LSTM)
    ours.set_weights(ref.get_weights())
    losses = []
    for m in (ref, ours):
        m.compile(optimizer="adam", loss="mse")
        losses.append(m.fit(x, y, epochs=3, batch_size=8, shuffle=False,
                            verbose=0).history["loss"])
    assert losses[0][-1] < losses[0][0]  # it trained
    assert_close(losses[1], losses[0], atol=1e-5)
    assert_close(ours.get_weights(), ref.get_weights(), atol=1e-5)


@pytest.mark.parametrize("jit_compile", [False, True])
def test_tf_function_and_jit_compile(jit_compile):
    x = random_inputs((3, 6, 4))
    ref, ours = make_pair(x, return_sequences=True, go_backwards=True)
    f = tf.function(lambda t: ours(t), jit_compile=jit_compile)
    assert_close(f(x), ref(x))


def test_model_compiled_with_jit_trains_like_keras():
    def model(factory):
        return keras.Sequential([keras.Input((5, 3)), factory(4),
                                 keras.layers.Dense(1)])

    ref, ours = model(keras.layers.LSTM), model(krp.LSTM)
    ours.set_weights(ref.get_weights())
    x, y = random_inputs((8, 5, 3)), random_inputs((8, 1), 1)
    losses = []
    for m in (ref, ours):
        m.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse",
                  jit_compile=True)
        losses.append([m.train_on_batch(x, y) for _ in range(3)])
    assert_close(losses[1], losses[0], atol=1e-5)


# -- the Keras 2 activation ----------------------------------------------------
def test_keras2_hard_sigmoid_fixed_numbers():
    x = np.array([-3.0, -2.5, -1.0, 0.0, 0.5, 2.5, 4.0], "float32")
    expected = [0.0, 0.0, 0.3, 0.5, 0.6, 1.0, 1.0]
    assert_close(
        krp.activations.keras2_hard_sigmoid(x), np.array(expected)
    )
    layer = krp.LSTM(2, recurrent_activation="keras2_hard_sigmoid")
    assert layer.recurrent_activation is krp.activations.keras2_hard_sigmoid
    config = layer.get_config()
    assert config["recurrent_activation"] == "keras2_hard_sigmoid"
    again = krp.LSTM.from_config(config)
    assert again.recurrent_activation is krp.activations.keras2_hard_sigmoid


# -- bad input ----------------------------------------------------------------
@pytest.mark.parametrize("kwargs, error, words", [
    (dict(units=0), ValueError, "units"),
    (dict(units=2.5), TypeError, "units"),
    (dict(units="3"), TypeError, "units"),
    (dict(units=4, dropout=1.01), ValueError, "dropout"),
    (dict(units=4, dropout=-0.1), ValueError, "dropout"),
    (dict(units=4, recurrent_dropout=1.5), ValueError, "recurrent_dropout"),
    # the issue's [0, 1); a Keras config's 1 loads through from_config only
    (dict(units=4, dropout=1.0), ValueError, "dropout"),
    (dict(units=4, recurrent_dropout=1), ValueError, "recurrent_dropout"),
    (dict(units=4, implementation=3), ValueError, "implementation"),
    (dict(units=4, implementation=0), ValueError, "implementation"),
    (dict(units=4, activation="nope"), ValueError, "activation"),
    (dict(units=4, recurrent_activation="nope"), ValueError,
     "recurrent_activation"),
    (dict(units=4, kernel_initializer="nope"), ValueError,
     "kernel_initializer"),
    (dict(units=4, bias_regularizer="nope"), ValueError, "bias_regularizer"),
    (dict(units=4, activity_regularizer="nope"), ValueError,
     "activity_regularizer"),
    (dict(units=4, recurrent_constraint="nope"), ValueError,
     "recurrent_constraint"),
    (dict(units=4, use_cudnn="yes"), ValueError, "use_cudnn"),
    (dict(units=4, dtype="int32"), ValueError, "dtype"),
    # Keras 2's spelling, for its configs
    (dict(units=4, batch_input_shape=5), TypeError, "batch_input_shape"),
    (dict(units=4, batch_input_shape="abc"), TypeError, "batch_input_shape"),
    (dict(units=4, batch_input_shape=(2,)), TypeError, "batch_input_shape"),
    (dict(units=4, batch_input_shape=np.zeros(3)), TypeError,
     "batch_input_shape"),
    (dict(units=4, batch_input_shape=(2, 3, 4), input_shape=(5, 6)),
     ValueError, "batch_input_shape"),
])
def test_bad_arguments_raise_at_construction(kwargs, error, words):
    with pytest.raises(error, match=words):
        krp.LSTM(**kwargs)
    layer_only = ("use_cudnn", "batch_input_shape")
    cell_kwargs = {k: v for k, v in kwargs.items() if k not in layer_only}
    if cell_kwargs != kwargs:
        return
    with pytest.raises(error, match=words):
        krp.LSTMCell(**cell_kwargs)


@pytest.mark.parametrize("value", ["auto", True, False, 1, 0, "yes", 2])
def test_use_cudnn_takes_what_keras_takes(value):
    """The values Keras's layers take, meaning what they mean there: on a
    CPU, `True` fails at call, the others run the loop."""
    x = random_inputs((2, 3, 4))

    def outcome(factory):
        try:
            layer = factory(4, use_cudnn=value)
        except ValueError:
            return "refused"
        try:
            layer(x)
        except ValueError:
            return "fails at call"
        return "runs"

    assert outcome(krp.LSTM) == outcome(keras.layers.LSTM)
    assert outcome(krp.GRU) == outcome(keras.layers.GRU)


@pytest.mark.parametrize("name", ["LSTM", "LSTMCell", "GRU", "GRUCell"])
@pytest.mark.parametrize("kwargs", [
    dict(units=4, seed=1.5), dict(units=4, seed="a"), dict(units="3"),
])
def test_bad_argument_errors_are_of_keras_class(name, kwargs):
    """Where Keras's class refuses an argument at construction, ours
    raises an error of the same class (a wrong type is both a `TypeError`
    and a `ValueError` in ours: Keras raises `ValueError` for a float
    seed, `TypeError` for a string `units`)."""
    with pytest.raises(Exception) as theirs:
        getattr(keras.layers, name)(**kwargs)
    with pytest.raises(theirs.type):
        getattr(krp, name)(**kwargs)


def test_bias_initializer_none_with_unit_forget_bias_is_a_clear_error():
    """Keras's layer fails here calling `None`; ours names the argument.
    Without `unit_forget_bias`, `None` builds, as Keras's does."""
    x = np.zeros((2, 3, 4), "float32")
    with pytest.raises(ValueError, match="bias_initializer"):
        krp.LSTM(3, bias_initializer=None)(x)
    assert krp.LSTM(3, bias_initializer=None, unit_forget_bias=False)(
        x).shape == keras.layers.LSTM(3, bias_initializer=None,
                                      unit_forget_bias=False)(x).shape


def test_legacy_implementation_zero_loads_as_one():
    with pytest.warns(UserWarning, match="implementation"):
        layer = krp.LSTM.from_config(
            {**krp.LSTM(3).get_config(), "implementation": 0})
    assert layer.implementation == 1


def test_saved_cell_config_with_keras_legacy_values_loads():
    """A cell's config inside `keras.layers.RNN` may hold what Keras
    writes and the constructor refuses: a rate clamped to 1, Keras 2.0's
    implementation 0. It loads, and the rate of 1 drops nothing, as in
    Keras's own cell."""
    x = random_inputs((2, 5, 3))
    reference = keras.layers.RNN(
        keras.layers.LSTMCell(4, dropout=1.0, recurrent_dropout=1.0))
    config = keras.layers.serialize(reference)
    config["config"]["cell"] = {
        **keras.layers.serialize(krp.LSTMCell(4)),
        "config": {**krp.LSTMCell(4).get_config(), "dropout": 1.0,
                   "recurrent_dropout": 1.0, "implementation": 0},
    }
    with pytest.warns(UserWarning, match="implementation"):
        ours = keras.layers.deserialize(config)
    assert (ours.cell.dropout, ours.cell.implementation) == (1.0, 1)
    copied_pair(reference, ours, x)
    assert_close(ours(x, training=True), reference(x, training=True))


def test_input_of_wrong_rank():
    with pytest.raises(ValueError, match="rank 3|ndim=3"):
        krp.LSTM(3)(np.zeros((2, 4), "float32"))


def test_feature_size_differs_from_build():
    layer = krp.LSTM(3)
    layer(np.zeros((2, 5, 4), "float32"))
    with pytest.raises(ValueError, match="axis -1|4"):
        layer(np.zeros((2, 5, 6), "float32"))


@pytest.mark.parametrize("states, words", [
    (lambda: [np.zeros((2, 3), "float32")], "2 tensors"),
    (lambda: [np.zeros((2, 4), "float32")] * 2, r"initial_state\[0\]"),
    (lambda: [np.zeros((2, 3), "float32")] * 3, "2 tensors"),
])
def test_wrong_initial_states(states, words):
    with pytest.raises(ValueError, match=words):
        krp.LSTM(3)(np.zeros((2, 5, 4), "float32"), initial_state=states())


@pytest.mark.parametrize("widths, words", [
    ((3,), "2 tensors"), ((4, 3), r"initial_state\[0\]"),
    ((3, 2), r"initial_state\[1\]"),
])
def test_wrong_symbolic_initial_states_fail_when_the_model_is_built(
        widths, words):
    states = [keras.Input((w,)) for w in widths]
    with pytest.raises(ValueError, match=words):
        krp.LSTM(3)(keras.Input((5, 4)), initial_state=states)


@pytest.mark.parametrize("shape", [(2, 4), (3, 5), (2, 5, 2), (2,)])
def test_mask_of_wrong_shape(shape):
    x = np.zeros((2, 5, 4), "float32")
    with pytest.raises(ValueError, match=r"mask of LSTM must have shape"):
        krp.LSTM(3)(x, mask=np.ones(shape, bool))


def test_weight_attributes_set_and_deleted_like_keras():
    """The cells' weight attributes behave as plain attributes of Keras's
    cells: missing before `build`, deletable (which untracks the weight)."""
    def after(factory):
        cell = factory(3)
        before = hasattr(cell, "kernel")
        cell.build((None, 4))
        del cell.kernel
        return before, hasattr(cell, "kernel"), [w.name for w in cell.weights]

    assert after(krp.LSTMCell) == after(keras.layers.LSTMCell)
    assert after(krp.GRUCell) == after(keras.layers.GRUCell)


def test_mask_passed_on_by_time_distributed_is_named():
    """Keras 3's `TimeDistributed` passes on the mask of the sequence layer
    it wraps, `(batch, steps, inner steps)`: refused, with the cause."""
    tokens = keras.Input((4, 5), dtype="int32")
    words = keras.layers.Embedding(10, 3, mask_zero=True)(tokens)
    encoded = keras.layers.TimeDistributed(krp.LSTM(UNITS))(words)
    model = keras.Model(tokens, krp.GRU(UNITS)(encoded))
    x = np.random.RandomState(0).randint(0, 10, (3, 4, 5))
    with pytest.raises(ValueError, match="TimeDistributed"):
        model.predict(x, verbose=0)


def test_mask_with_trailing_axis_as_keras_reads_it():
    x = random_inputs((2, 5, 4))
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)
    ref, ours = make_pair(x)
    assert_close(ours(x, mask=mask[..., None]), ref(x, mask=mask))


def test_stateful_needs_fixed_batch_size():
    with pytest.raises(ValueError, match="batch size"):
        keras.Sequential([keras.Input((5, 3)), krp.LSTM(2, stateful=True)])


@pytest.mark.parametrize("return_sequences", [False, True])
def test_zero_timesteps_is_a_clear_error(return_sequences):
    layer = krp.LSTM(3, return_sequences=return_sequences)
    empty = np.zeros((2, 0, 4), "float32")
    with pytest.raises(ValueError, match="0 timesteps"):
        layer(empty)
    # A length known only when a graph runs (a served model) too.
    served = tf.function(
        layer, input_signature=[tf.TensorSpec((None, None, 4))])
    with pytest.raises(tf.errors.InvalidArgumentError, match="0 timesteps"):
        served(empty)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize("implementation", [1, 2])
def test_mixed_precision_policy_like_keras(policy, implementation):
    """The same sums in the same order as Keras: the same numbers, to the
    bit (Keras's fused mode adds the bias with `BiasAdd`, whose gradient
    sums in float32)."""
    check_mixed_precision_like_keras(make_pair, policy, implementation)


def test_numpy_booleans_are_read_as_keras_reads_them():
    """Flags from NumPy (a parameter grid, `np.random.choice`) work as in
    Keras, and the config holds plain Python booleans."""
    x = random_inputs((2, 5, 3))
    flags = dict(return_sequences=np.True_, return_state=np.int64(1),
                 go_backwards=np.bool_(True), use_bias=np.True_)
    ref, ours = make_pair(x, **flags)
    assert_close(ours(x), ref(x))
    config = ours.get_config()
    assert all(type(config[k]) is bool for k in flags)
    json.dumps(config)


def test_numpy_integer_seed_draws_keras_masks():
    """`seed=np.int64(7)` (Keras refuses it) draws the dropout masks that
    Keras draws with `seed=7`."""
    x = random_inputs((2, 5, 3))
    ref = keras.layers.LSTM(4, dropout=0.5, recurrent_dropout=0.3, seed=7)
    ours = krp.LSTM(4, dropout=0.5, recurrent_dropout=0.3,
                    seed=np.int64(7))
    copied_pair(ref, ours, x)
    assert_close(ours(x, training=True), ref(x, training=True),
                 atol=0, rtol=0)
    assert type(ours.get_config()["seed"]) is int


def test_stateful_batch_mismatch_in_compiled_predict_is_named():
    """Keras's stateful LSTM, given another batch size in `predict`, fails
    deep in its loop; ours stops with an error that says why."""
    model = keras.Sequential([keras.Input((4, 3), batch_size=2),
                              krp.LSTM(2, stateful=True)])
    model.predict(random_inputs((2, 4, 3)), verbose=0)
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match="stateful: the batch size"):
        model.predict(random_inputs((4, 4, 3)), verbose=0)
