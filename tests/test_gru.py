"""krp.GRU / krp.GRUCell against keras.layers.GRU: signature, weights,
outputs, states, gradients, masking, dropout, losses, constraints,
serialization (configs, `.keras`, `.weights.h5`, SavedModel export), errors
and the cuDNN dispatch."""

import importlib
import inspect
import itertools
import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from testing import (
    GRAD_ATOL,
    assert_close,
    check_mixed_precision_like_keras,
    gradients,
    random_inputs,
    randomize_weights,
    run_python,
    run_tf1_cell,
)

import keras_rnn_plus as krp
from keras_rnn_plus import gru as gru_module

ACTIVATIONS = ["tanh", "sigmoid", "hard_sigmoid", "relu", "linear"]
UNITS = 5


def make_pair(x, reference_kwargs=None, scale=0.5, **kwargs):
    """keras.layers.GRU and krp.GRU built on `x`, with the same random
    weights (biases included)."""
    ref = keras.layers.GRU(UNITS, **kwargs, **(reference_kwargs or {}))
    ours = krp.GRU(UNITS, **kwargs)
    ref(x)
    randomize_weights(ref, scale=scale)
    ours(x)
    ours.set_weights(ref.get_weights())
    return ref, ours


def check_parity(ref, ours, x, grad_rtol=1e-6, **call_kwargs):
    assert_close(ours(x, **call_kwargs), ref(x, **call_kwargs))
    assert_close(gradients(ours, x, **call_kwargs),
                 gradients(ref, x, **call_kwargs),
                 atol=GRAD_ATOL, rtol=grad_rtol, what="gradients")


# -- signature ----------------------------------------------------------------
def test_layer_signature_order_and_keras_defaults():
    """Keras's GRU order, then `implementation` before **kwargs: a
    positional call written for keras.layers.GRU means the same here."""
    ours = inspect.signature(krp.GRU).parameters
    theirs = inspect.signature(keras.layers.GRU).parameters
    assert list(ours) == list(theirs)[:-1] + ["implementation", "kwargs"]
    for name, p in theirs.items():
        assert ours[name].default == p.default, name
    assert ours["implementation"].default == 2
    assert ours["reset_after"].default is True


def test_cell_signature_keeps_keras_positions():
    ours = list(inspect.signature(krp.GRUCell).parameters.items())
    theirs = list(inspect.signature(keras.layers.GRUCell).parameters.items())
    # Keras's positional order, then `implementation` before **kwargs.
    assert [n for n, _ in ours[:-2]] == [n for n, _ in theirs[:-1]]
    assert [n for n, _ in ours[-2:]] == ["implementation", "kwargs"]
    for (name, p), (_, q) in zip(ours[:-2], theirs[:-1]):
        assert p.default == q.default, name
    assert dict(ours)["implementation"].default == 2


def test_layer_exposes_cell_settings():
    layer = krp.GRU(3, reset_after=False, implementation=1, seed=4,
                    dropout=0.2, zero_output_for_mask=True, name="g",
                    trainable=False)
    assert (layer.units, layer.reset_after, layer.implementation,
            layer.seed, layer.dropout) == (3, False, 1, 4, 0.2)
    assert layer.zero_output_for_mask and not layer.trainable
    assert layer.cell.name == "gru_cell"


# -- weights ------------------------------------------------------------------
@pytest.mark.parametrize("reset_after, use_bias, bias_shape", [
    (True, True, (2, 3 * UNITS)),
    (False, True, (3 * UNITS,)),
    (True, False, None),
])
def test_weight_names_shapes_and_order(reset_after, use_bias, bias_shape):
    x = random_inputs((2, 3, 7))
    kw = dict(reset_after=reset_after, use_bias=use_bias)
    ref, ours = keras.layers.GRU(UNITS, **kw), krp.GRU(UNITS, **kw)
    ref(x), ours(x)
    # the same paths below the layer's (uniquified) name
    assert [w.path.split("/", 1)[1] for w in ours.weights] == [
        w.path.split("/", 1)[1] for w in ref.weights]
    shapes = [tuple(w.shape) for w in ours.weights]
    assert shapes == [tuple(w.shape) for w in ref.weights]
    expected = [(7, 3 * UNITS), (UNITS, 3 * UNITS)]
    assert shapes == expected + ([bias_shape] if use_bias else [])
    randomize_weights(ours, seed=3)
    ref.set_weights(ours.get_weights())  # ours -> Keras
    assert_close(ref(x), ours(x))
    randomize_weights(ref, seed=4)
    ours.set_weights(ref.get_weights())  # Keras -> ours
    assert_close(ours(x), ref(x))


@pytest.mark.parametrize("reset_after", [True, False])
def test_initialisation_matches_keras(reset_after):
    x = random_inputs((2, 3, 4))
    kw = dict(reset_after=reset_after,
              kernel_initializer=keras.initializers.GlorotNormal(seed=1),
              recurrent_initializer=keras.initializers.Orthogonal(seed=2),
              bias_initializer=keras.initializers.RandomNormal(seed=3))
    ref, ours = keras.layers.GRU(UNITS, **kw), krp.GRU(UNITS, **kw)
    ref(x), ours(x)
    for a, b in zip(ours.get_weights(), ref.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_weights_h5_files_both_ways(tmp_path):
    x = random_inputs((3, 5, 4), seed=4)

    def model(gru, **extra):
        return keras.Sequential([
            keras.Input((5, 4)),
            gru(UNITS, return_sequences=True, go_backwards=True),
            gru(UNITS, reset_after=False, **extra),
            keras.layers.Dense(2),
        ])

    for source, target in [(model(keras.layers.GRU),
                            model(krp.GRU, implementation=1)),
                           (model(krp.GRU, implementation=1),
                            model(keras.layers.GRU))]:
        for layer in source.layers:
            randomize_weights(layer, seed=len(layer.name), scale=0.4)
        path = tmp_path / "gru.weights.h5"
        source.save_weights(path)
        expected = source.predict(x, verbose=0)
        assert np.max(np.abs(target.predict(x, verbose=0) - expected)) > 1e-3
        target.load_weights(path)
        assert_close(target.predict(x, verbose=0), expected)
        for a, b in zip(target.get_weights(), source.get_weights()):
            np.testing.assert_array_equal(a, b)


# -- the parity grid -----------------------------------------------------------
FLAGS = ["use_bias", "reset_after", "implementation", "return_sequences",
         "return_state", "go_backwards", "unroll"]


def _covering_rows():
    """16 settings of the 7 two-level flags in which every pair of flags
    takes all four value pairs (an orthogonal array and its mirror)."""
    for flip in (0, 1):
        for i in range(8):
            yield [(bin(i & (j + 1)).count("1") + flip) % 2
                   for j in range(len(FLAGS))]


GRID = [
    dict(activation=a, recurrent_activation=r, reset_after=(i + j) % 2 == 0)
    for (i, a), (j, r) in itertools.product(enumerate(ACTIVATIONS),
                                            enumerate(ACTIVATIONS))
] + [
    {flag: (2 - bit if flag == "implementation" else bool(bit))
     for flag, bit in zip(FLAGS, row)}
    for row in _covering_rows()
]


@pytest.mark.parametrize("kwargs", GRID, ids=lambda k: "-".join(
    f"{key[:6]}={v}" for key, v in k.items()))
def test_parity_outputs_states_and_gradients(kwargs):
    x = random_inputs((3, 6, 4))
    # Unbounded gate activations (relu, linear) let the state grow: smaller
    # weights keep it moderate, and the gradients (up to ~1e3) are compared
    # with a float32-sized relative tolerance on top of the absolute one.
    ref, ours = make_pair(x, scale=0.3, **kwargs)
    check_parity(ref, ours, x, grad_rtol=1e-5)


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("implementation", [1, 2])
def test_implementations_are_real_paths_with_equal_numbers(
        implementation, reset_after, monkeypatch):
    x = random_inputs((3, 6, 4))
    ref, ours = make_pair(x, implementation=implementation,
                          reset_after=reset_after, return_sequences=True)
    assert ours.cell.per_gate == (implementation == 1)
    assert ours.get_config()["implementation"] == implementation
    assert_close(ours(x), ref(x))
    # Count the products of one cell step: per gate, 3 input + 3
    # recurrent; fused, 1 input + 1 recurrent (+ 1 for the candidate when
    # the reset gate comes before its product).
    products = []
    matmul = keras.ops.matmul
    monkeypatch.setattr(keras.ops, "matmul",
                        lambda a, b: products.append(1) or matmul(a, b))
    ours.cell(x[:, 0], [np.zeros((3, UNITS), "float32")])
    expected = 6 if implementation == 1 else (2 if reset_after else 3)
    assert len(products) == expected


@pytest.mark.parametrize("reset_after", [True, False])
def test_cell_inside_keras_rnn_equals_keras_gru(reset_after):
    x = random_inputs((3, 6, 4))
    ref = keras.layers.GRU(UNITS, return_sequences=True, return_state=True,
                           reset_after=reset_after)
    ours = keras.layers.RNN(krp.GRUCell(UNITS, reset_after=reset_after),
                            return_sequences=True, return_state=True)
    ref(x)
    randomize_weights(ref)
    ours(x)
    ours.set_weights(ref.get_weights())
    check_parity(ref, ours, x)


def test_cell_keeps_the_state_structure_it_is_given():
    x, h = random_inputs((2, 3)), random_inputs((2, UNITS), 1)
    ref, ours = keras.layers.GRUCell(UNITS), krp.GRUCell(UNITS)
    ref(x, h), ours(x, h)
    randomize_weights(ref)
    ours.set_weights(ref.get_weights())
    out, state = ours(x, h)  # a bare tensor in, a bare tensor out
    assert not isinstance(state, (list, tuple))
    assert_close([out, state], list(ref(x, h)))
    out, state = ours(x, [h])
    assert isinstance(state, list) and len(state) == 1
    assert_close([out] + state, [ref(x, [h])[0]] + ref(x, [h])[1])
    assert ours.state_size == UNITS and ours.output_size == UNITS


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize("implementation", [1, 2])
@pytest.mark.parametrize("reset_after", [True, False])
def test_mixed_precision_policy_like_keras(policy, implementation,
                                           reset_after):
    check_mixed_precision_like_keras(make_pair, policy, implementation,
                                     reset_after=reset_after)


# -- masking -------------------------------------------------------------------
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


@pytest.mark.parametrize("left, go_backwards, zero_output, reset_after", [
    (False, False, False, True),
    (True, False, True, False),
    (False, True, True, True),
    (True, True, False, False),
    (False, False, True, False),
    (True, True, True, True),
])
def test_explicit_mask_left_right_and_empty_rows(left, go_backwards,
                                                 zero_output, reset_after):
    x, mask = padded_batch([7, 3, 0, 5], left=left)
    ref, ours = make_pair(x, return_sequences=True, return_state=True,
                          go_backwards=go_backwards, reset_after=reset_after,
                          zero_output_for_mask=zero_output)
    check_parity(ref, ours, x, mask=mask)
    # From a nonzero state: an empty row keeps it, with zero outputs.
    h0 = random_inputs((4, UNITS), 9)
    check_parity(ref, ours, x, mask=mask, initial_state=h0)


@pytest.mark.parametrize("source", ["masking", "embedding"])
def test_mask_from_masking_and_embedding_layers(source):
    x, mask = padded_batch([7, 2, 0], left=source == "embedding")

    def model(gru):
        if source == "masking":
            inp = keras.Input((7, 4))
            seq = keras.layers.Masking(0.0)(inp)
        else:
            inp = keras.Input((7,), dtype="int32")
            seq = keras.layers.Embedding(10, 4, mask_zero=True)(inp)
        return keras.Model(inp, gru(UNITS, return_sequences=True)(seq))

    if source == "embedding":
        x = np.where(mask, np.arange(1, 8)[None, :] % 9 + 1, 0)
        x = x.astype("int32")
    ref, ours = model(keras.layers.GRU), model(krp.GRU)
    randomize_weights(ref)
    ours.set_weights(ref.get_weights())
    assert_close(ours(x), ref(x))


# -- initial and carried states ------------------------------------------------
@pytest.mark.parametrize("as_list, state_batch", [
    (False, 3), (True, 3), (True, 1)])
def test_initial_state_call_argument(as_list, state_batch):
    """A state of batch 1 serves every sequence, as in Keras's loop."""
    x, h0 = random_inputs((3, 6, 4)), random_inputs((state_batch, UNITS), 5)
    state = [h0] if as_list else h0
    ref, ours = make_pair(x, return_state=True, go_backwards=as_list)
    check_parity(ref, ours, x, initial_state=state)


def test_initial_state_as_functional_input():
    def model(gru):
        x, h = keras.Input((6, 4)), keras.Input((UNITS,))
        y = gru(UNITS, return_sequences=True)(x, initial_state=h)
        return keras.Model([x, h], y)

    ref, ours = model(keras.layers.GRU), model(krp.GRU)
    randomize_weights(ref)
    ours.set_weights(ref.get_weights())
    args = [random_inputs((3, 6, 4)), random_inputs((3, UNITS), 2)]
    assert_close(ours.predict(args, verbose=0), ref.predict(args, verbose=0))


def test_stateful_batches_then_reset_state():
    batches = [random_inputs((2, 5, 3), s) for s in range(3)]
    ref, ours = make_pair(batches[0], stateful=True, return_state=True)
    ref.reset_state(), ours.reset_state()
    for b in batches:  # the state carries over from batch to batch
        assert_close(ours(b), ref(b))
    ours.reset_state(), ref.reset_state()
    assert_close([v.numpy() for v in ours.states], [np.zeros((2, UNITS))])
    assert_close(ours(batches[1]), ref(batches[1]))


# -- dropout -------------------------------------------------------------------
DROPOUTS = [dict(dropout=0.3), dict(recurrent_dropout=0.4),
            dict(dropout=0.25, recurrent_dropout=0.35)]


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("implementation", [1, 2])
@pytest.mark.parametrize("rates", DROPOUTS, ids=lambda r: "-".join(r))
def test_dropout_off_at_inference_and_seeded_like_keras(
        rates, implementation, reset_after):
    x = random_inputs((4, 6, 3))
    kw = dict(seed=11, implementation=implementation, reset_after=reset_after,
              return_sequences=True, **rates)
    # keras.layers.GRU(implementation=1) with input dropout crashes in
    # training on its cuDNN-attempt path (a list of masks is broadcast to
    # the sequence); its default loop is then the reference.
    crashes = implementation == 1 and not rates.get("recurrent_dropout")
    ref, ours = make_pair(
        x, reference_kwargs=dict(use_cudnn=False) if crashes else None, **kw)
    plain = keras.layers.GRU(UNITS, return_sequences=True,
                             reset_after=reset_after)
    plain(x)
    plain.set_weights(ref.get_weights())
    # Inference: no dropout at all. (Every call draws masks, used or not:
    # both layers make the same calls, so their seed generators stay in
    # step.)
    assert_close(ours(x), plain(x))
    assert_close(ref(x), plain(x))
    for _ in range(2):  # new masks for each call, the same as Keras's
        assert_close(ours(x, training=True), ref(x, training=True))
    y = np.asarray(ours(x, training=True))
    assert not np.allclose(y, np.asarray(plain(x)), atol=1e-3)


def test_dropout_gradients_equal_keras():
    x = random_inputs((3, 5, 4))
    ref, ours = make_pair(x, seed=2, dropout=0.3, recurrent_dropout=0.2,
                          return_sequences=True)
    check_parity(ref, ours, x, training=True)


def test_dropout_same_mask_at_every_timestep():
    # With z = r = 0 (zero gate weights, linear gate activation, no bias)
    # h(t) is the candidate act(x(t) W_h) alone: equal inputs give equal
    # outputs at every step exactly when the dropout mask is the same.
    layer = krp.GRU(UNITS, dropout=0.5, seed=1, return_sequences=True,
                    recurrent_initializer="zeros", use_bias=False,
                    recurrent_activation="linear")
    x = np.repeat(random_inputs((2, 1, 6)), 4, axis=1)
    layer(x)
    kernel, rec = layer.get_weights()
    kernel[:, :2 * UNITS] = 0.0
    layer.set_weights([kernel, rec])
    y = np.asarray(layer(x, training=True))
    assert_close(y, np.repeat(y[:, :1], 4, axis=1))
    assert not np.allclose(y, np.asarray(layer(x)), atol=1e-3)  # dropped


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


@pytest.mark.parametrize("reset_after", [True, False])
def test_constraints_applied_after_optimizer_step(reset_after):
    con = dict(kernel_constraint=keras.constraints.MaxNorm(0.1),
               recurrent_constraint=keras.constraints.NonNeg(),
               bias_constraint=keras.constraints.MinMaxNorm(0.0, 0.2),
               reset_after=reset_after)

    def model(gru):
        return keras.Sequential([keras.Input((4, 3)), gru(UNITS, **con),
                                 keras.layers.Dense(1)])

    ref, ours = model(keras.layers.GRU), model(krp.GRU)
    randomize_weights(ref)
    ours.set_weights(ref.get_weights())
    x, y = random_inputs((8, 4, 3)), random_inputs((8, 1), 1)
    for m in (ref, ours):
        m.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse")
        m.train_on_batch(x, y)
    assert_close(ours.get_weights(), ref.get_weights())
    assert np.all(ours.layers[0].get_weights()[1] >= 0)


def test_model_compiled_with_jit_trains_like_keras():
    def model(gru):
        return keras.Sequential([keras.Input((5, 3)),
                                 gru(4, reset_after=False),
                                 keras.layers.Dense(1)])

    ref, ours = model(keras.layers.GRU), model(krp.GRU)
    randomize_weights(ref)
    ours.set_weights(ref.get_weights())
    x, y = random_inputs((8, 5, 3)), random_inputs((8, 1), 1)
    losses = []
    for m in (ref, ours):
        m.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse",
                  jit_compile=True)
        losses.append([m.train_on_batch(x, y) for _ in range(3)])
    assert_close(losses[1], losses[0])


def test_tf_function_with_unknown_batch_and_length():
    x = random_inputs((3, 6, 4))
    ref, ours = make_pair(x, return_sequences=True, go_backwards=True)
    f = tf.function(lambda t: ours(t), input_signature=[
        tf.TensorSpec((None, None, 4), "float32")])
    assert_close(f(x), ref(x))
    assert_close(f(x[:2, :3]), ref(x[:2, :3]))


def test_keras2_hard_sigmoid_by_name():
    layer = krp.GRU(2, recurrent_activation="keras2_hard_sigmoid")
    assert layer.recurrent_activation is krp.activations.keras2_hard_sigmoid
    again = krp.GRU.from_config(layer.get_config())
    assert again.recurrent_activation is krp.activations.keras2_hard_sigmoid


# -- configs -------------------------------------------------------------------
def non_default_kwargs():
    return dict(
        activation="relu",
        recurrent_activation="keras2_hard_sigmoid",
        use_bias=True,
        kernel_initializer=keras.initializers.GlorotNormal(seed=11),
        recurrent_initializer=keras.initializers.Orthogonal(gain=0.9,
                                                            seed=12),
        bias_initializer=keras.initializers.RandomUniform(-0.1, 0.1, seed=13),
        kernel_regularizer=keras.regularizers.L1L2(l1=0.01, l2=0.02),
        recurrent_regularizer=keras.regularizers.L2(0.03),
        bias_regularizer=keras.regularizers.L1(0.04),
        activity_regularizer=keras.regularizers.L2(0.05),
        kernel_constraint=keras.constraints.MaxNorm(2.0),
        recurrent_constraint=keras.constraints.UnitNorm(axis=0),
        bias_constraint=keras.constraints.NonNeg(),
        dropout=0.1,
        recurrent_dropout=0.2,
        implementation=1,
        seed=1234,
        return_sequences=True,
        return_state=True,
        go_backwards=True,
        stateful=False,
        unroll=True,
        reset_after=False,
        use_cudnn=False,
        zero_output_for_mask=True,
        name="my_gru",
    )


def test_config_holds_every_argument_and_round_trips():
    kwargs = non_default_kwargs()
    layer = krp.GRU(UNITS, **kwargs)
    config = layer.get_config()
    params = [n for n in inspect.signature(krp.GRU).parameters
              if n != "kwargs"]
    assert set(params) <= set(config)
    json.dumps(config)  # plain JSON
    again = krp.GRU.from_config(config)
    assert again.get_config() == config
    cell_config = layer.cell.get_config()
    cell_params = [n for n in inspect.signature(krp.GRUCell).parameters
                   if n != "kwargs"]
    assert set(cell_params) <= set(cell_config)
    assert krp.GRUCell.from_config(cell_config).get_config() == cell_config
    # and the numbers, dropout included (same seed, same masks)
    x = random_inputs((2, 4, 3))
    layer(x), again(x)
    again.set_weights(layer.get_weights())
    assert_close(again(x, training=True), layer(x, training=True), atol=0)


def test_keras_config_loads_into_ours_and_back():
    x = random_inputs((3, 5, 4))
    reference = keras.layers.GRU(
        UNITS, activation="relu", recurrent_activation="hard_sigmoid",
        reset_after=False, kernel_constraint=keras.constraints.MaxNorm(2.0),
        bias_regularizer=keras.regularizers.L2(0.1), go_backwards=True,
        return_sequences=True, return_state=True, zero_output_for_mask=True)
    ours = krp.GRU.from_config(reference.get_config())
    reference(x)
    randomize_weights(reference)
    ours(x)
    ours.set_weights(reference.get_weights())
    assert_close(ours(x), reference(x))
    ours_config = ours.get_config()
    for key, value in reference.get_config().items():
        assert ours_config[key] == value, key
    back = keras.layers.GRU.from_config(ours_config)  # takes implementation
    back(x)
    back.set_weights(ours.get_weights())
    assert_close(back(x), ours(x))
    cell = krp.GRUCell.from_config(reference.cell.get_config())
    assert cell.reset_after is False and cell.units == UNITS


# -- .keras files and SavedModel export in fresh processes ---------------------
def _gru_models():
    seq = keras.Sequential([
        keras.Input((5, 4)),
        krp.GRU(UNITS, return_sequences=True, implementation=1),
        krp.GRU(UNITS, reset_after=False, go_backwards=True,
                recurrent_activation="keras2_hard_sigmoid"),
        keras.layers.Dense(2),
    ], name="seq")
    inp = keras.Input((5, 4))
    masked = keras.layers.Masking(0.0)(inp)
    out, h = krp.GRU(UNITS, return_sequences=True, return_state=True,
                     kernel_regularizer=keras.regularizers.L2(0.01),
                     dropout=0.1, recurrent_dropout=0.1, seed=3)(masked)
    last = krp.GRU(UNITS, reset_after=False, unroll=True,
                   use_bias=False)(out, initial_state=h)
    func = keras.Model(inp, keras.layers.Concatenate()([last, h]),
                       name="func")
    return {"seq": seq, "func": func}


KERAS_LOAD = """
import json, sys
import numpy as np, keras
import keras_rnn_plus
root, report = sys.argv[1], {}
for name in ["seq", "func"]:
    model = keras.models.load_model(f"{root}/{name}.keras")
    x = np.load(f"{root}/x.npy")
    grus = [l for l in model.layers if "GRU" in type(l).__name__]
    report[name] = dict(
        y=model.predict(x, verbose=0).tolist(),
        classes=[type(l).__module__ + "." + type(l).__name__ for l in grus],
        configs=[l.get_config() for l in grus],
        losses=len(model.losses))
print("REPORT" + json.dumps(report))
"""

SERVE = """
import json, sys
import numpy as np, tensorflow as tf
root, report = sys.argv[1], {}
x = np.load(f"{root}/x.npy")
for name in ["seq", "func"]:
    served = tf.saved_model.load(f"{root}/{name}_export")
    report[name] = np.asarray(served.serve(tf.constant(x))).tolist()
assert not [m for m in sys.modules if m.startswith("keras_rnn_plus")]
print("REPORT" + json.dumps(report))
"""


def _report(code, root):
    out = run_python(f"import sys; sys.argv[1:] = [{str(root)!r}]\n" + code)
    line = [s for s in out.splitlines() if s.startswith("REPORT")][-1]
    return json.loads(line[len("REPORT"):])


@pytest.fixture(scope="module")
def saved_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("gru_files")
    x = random_inputs((3, 5, 4), seed=9)
    x[0, 3:] = 0.0  # masked tail in the functional model
    np.save(root / "x.npy", x)
    keras.utils.clear_session()
    models, expected = _gru_models(), {}
    for i, (name, model) in enumerate(models.items()):
        for layer in model.layers:
            if isinstance(layer, krp.GRU):
                randomize_weights(layer, seed=i, scale=0.4)
        expected[name] = model.predict(x, verbose=0)
        model.save(root / f"{name}.keras")
        model.export(root / f"{name}_export", verbose=False)
    return root, models, expected


def test_keras_files_reload_in_fresh_process(saved_models):
    root, models, expected = saved_models
    report = _report(KERAS_LOAD, root)
    for name, model in models.items():
        got = report[name]
        # a fresh process may round differently (oneDNN): ~1e-8
        assert_close(np.float32(got["y"]), expected[name], atol=1e-6)
        grus = [ly for ly in model.layers if isinstance(ly, krp.GRU)]
        assert got["classes"] == ["keras_rnn_plus.gru.GRU"] * len(grus)
        configs = [json.loads(json.dumps(g.get_config())) for g in grus]
        assert got["configs"] == configs
        assert got["losses"] == len(model.losses)


def test_export_served_without_keras_rnn_plus(saved_models):
    root, models, expected = saved_models
    report = _report(SERVE, root)
    for name in models:
        assert_close(np.float32(report[name]), expected[name])


# -- bad input -----------------------------------------------------------------
@pytest.mark.parametrize("kwargs, error, words", [
    (dict(units=0), ValueError, "units"),
    (dict(units=-2), ValueError, "units"),
    (dict(units=2.5), TypeError, "units"),
    (dict(units=None), TypeError, "units"),
    (dict(units=4, dropout=1.01), ValueError, "dropout"),
    (dict(units=4, dropout=-0.1), ValueError, "dropout"),
    (dict(units=4, dropout="0.1"), TypeError, "dropout"),
    (dict(units=4, recurrent_dropout=1.5), ValueError, "recurrent_dropout"),
    (dict(units=4, dropout=1.0), ValueError, "dropout"),
    (dict(units=4, implementation=3), ValueError, "implementation"),
    (dict(units=4, implementation=0), ValueError, "implementation"),
    (dict(units=4, activation="nope"), ValueError, "activation"),
    (dict(units=4, activity_regularizer="nope"), ValueError,
     "activity_regularizer"),
    (dict(units=4, recurrent_activation="nope"), ValueError,
     "recurrent_activation"),
    (dict(units=4, kernel_initializer="nope"), ValueError,
     "kernel_initializer"),
    (dict(units=4, recurrent_regularizer="nope"), ValueError,
     "recurrent_regularizer"),
    (dict(units=4, bias_constraint="nope"), ValueError, "bias_constraint"),
    (dict(units=4, reset_after="yes"), TypeError, "reset_after"),
    (dict(units=4, use_bias=None), TypeError, "use_bias"),
    (dict(units=4, seed=1.5), TypeError, "seed"),
    (dict(units=4, use_cudnn="yes"), ValueError, "use_cudnn"),
    (dict(units=4, return_sequences="no"), TypeError, "return_sequences"),
    (dict(units=4, dtype="int32"), ValueError, "dtype"),
])
def test_bad_arguments_raise_at_construction(kwargs, error, words):
    with pytest.raises(error, match=words):
        krp.GRU(**kwargs)
    if {"use_cudnn", "return_sequences"} & set(kwargs):
        return
    with pytest.raises(error, match=words):
        krp.GRUCell(**kwargs)


def test_legacy_implementation_zero_loads_as_one():
    with pytest.warns(UserWarning, match="implementation"):
        layer = krp.GRU.from_config(
            {**krp.GRU(3).get_config(), "implementation": 0})
    assert layer.implementation == 1


@pytest.mark.parametrize("inputs, words", [
    (np.zeros((2, 4), "float32"), "rank 3|ndim=3"),
    (np.zeros((2, 0, 4), "float32"), "0 timesteps"),
])
def test_bad_inputs(inputs, words):
    with pytest.raises(ValueError, match=words):
        krp.GRU(3)(inputs)


@pytest.mark.parametrize("states, words", [
    ([np.zeros((2, 3), "float32")] * 2, "1 tensors"),
    ([np.zeros((2, 4), "float32")], r"initial_state\[0\]"),
])
def test_wrong_initial_state(states, words):
    with pytest.raises(ValueError, match=words):
        krp.GRU(3)(np.zeros((2, 5, 4), "float32"), initial_state=states)


# -- cuDNN dispatch (the kernel itself needs a GPU) ----------------------------
def test_use_cudnn_true_without_gpu_is_a_clear_error():
    with pytest.raises(ValueError, match="cuDNN"):
        krp.GRU(3, use_cudnn=True)(random_inputs((2, 4, 3)))


@pytest.mark.parametrize("kwargs, dispatched", [
    (dict(), True),
    (dict(dropout=0.2, go_backwards=True, return_sequences=True), True),
    (dict(reset_after=False), False),
    (dict(recurrent_dropout=0.2), False),
    (dict(activation="relu"), False),
    (dict(unroll=True), False),
    (dict(use_bias=False), False),
    (dict(use_cudnn=False), False),
    (dict(dropout=0.2, implementation=1), False),
])
def test_cudnn_dispatch_as_keras(kwargs, dispatched, monkeypatch):
    """With a GPU faked, the layer hands the right arguments to the
    backend's fused GRU where Keras would, and falls back to its own loop
    (same numbers) when the backend declines."""
    tf_rnn = importlib.import_module("keras.src.backend.tensorflow.rnn")

    calls = []

    def fake_gru(inputs, initial_state, mask, **kw):
        calls.append(dict(kw, inputs=inputs, initial_state=initial_state,
                          mask=mask, dropout_mask=layer.cell._dropout_mask))
        raise NotImplementedError

    monkeypatch.setattr(tf_rnn, "_is_gpu_available", lambda: True)
    monkeypatch.setattr(gru_module._backend, "gru", fake_gru)
    x = random_inputs((2, 4, 3))
    layer = krp.GRU(UNITS, seed=1, **kwargs)
    assert layer._cudnn_possible() == (dispatched or "implementation" in
                                       kwargs)
    assert layer.supports_jit != layer._cudnn_possible()
    y = layer(x, training=True)
    assert len(calls) == int(dispatched)
    if dispatched:
        call = calls[0]
        assert call["reset_after"] is True
        assert call["bias"] is layer.cell.bias
        assert tuple(call["initial_state"].shape) == (2, UNITS)
        # Without a mask the layer reverses the inputs itself, so that
        # any kernel's outputs come in the order of processing.
        assert call["go_backwards"] is False
        assert call["return_sequences"] == layer.return_sequences
        expected = x[:, ::-1] if layer.go_backwards else x
        if layer.dropout:  # inputs arrive with the dropout mask applied
            expected = expected * np.asarray(call["dropout_mask"])[:, None]
        assert_close(call["inputs"], expected)
    monkeypatch.undo()
    plain = krp.GRU(UNITS, seed=1, **{**kwargs, "use_cudnn": False})
    plain.build(x.shape)  # no call: the same masks are drawn next
    plain.set_weights(layer.get_weights())
    assert_close(plain(x, training=True), y)


@pytest.mark.parametrize("units, features, bias, seed", [
    (5, 4, True, 0), (3, 7, True, 1), (4, 2, False, 2), (1, 3, True, 3),
])
def test_from_torch_gru_matches_torch(units, features, bias, seed):
    """`porting.from_torch_gru`: PyTorch's `nn.GRU` weights in `krp.GRU`
    give its outputs and final state, from a given initial state too."""
    torch = pytest.importorskip("torch")
    from keras_rnn_plus.porting import from_torch_gru

    torch.manual_seed(seed)
    x = random_inputs((3, 6, features), seed=seed)
    h0 = random_inputs((3, units), seed=seed + 10)
    theirs = torch.nn.GRU(features, units, bias=bias, batch_first=True)
    with torch.no_grad():
        for p in theirs.parameters():
            p.uniform_(-0.8, 0.8)
        seq, h = theirs(torch.from_numpy(x), torch.from_numpy(h0)[None])
    p = {k: v.detach().numpy() for k, v in theirs.named_parameters()}
    ours = krp.GRU(units, use_bias=bias, return_sequences=True,
                   return_state=True)
    ours(x)
    ours.set_weights(from_torch_gru(
        p["weight_ih_l0"], p["weight_hh_l0"], p.get("bias_ih_l0"),
        p.get("bias_hh_l0")))
    assert_close(ours(x, initial_state=[h0]), [seq.numpy(), h[0].numpy()])


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_from_tf1_gru_cell_matches_tf1(activation):
    """`porting.from_tf1_gru_cell`: TF1's `GRUCell` (Keras 2's legacy
    cell) stepped by hand, against `krp.GRU(reset_after=False)`."""
    legacy = pytest.importorskip("tf_keras.src.layers.rnn.legacy_cells")
    from keras_rnn_plus.porting import from_tf1_gru_cell

    x = random_inputs((3, 6, 4))
    h0 = random_inputs((3, UNITS), seed=5)
    cell = legacy.GRUCell(UNITS, activation=activation)
    outputs, state, named = run_tf1_cell(cell, x, tf.constant(h0), seed=4,
                                         scale=0.6)
    ours = krp.GRU(UNITS, activation=activation, reset_after=False,
                   return_sequences=True, return_state=True)
    ours(x)
    ours.set_weights(from_tf1_gru_cell(
        named["gates/kernel"], named["gates/bias"],
        named["candidate/kernel"], named["candidate/bias"]))
    assert_close(ours(x, initial_state=[h0]), [outputs, state])


@pytest.mark.parametrize("kwargs, argument", [
    (dict(weight_ih=np.zeros((10, 3)), weight_hh=np.zeros((12, 4))),
     "weight_ih"),
    (dict(weight_ih=np.zeros((3, 6)), weight_hh=np.zeros((6, 2))),
     "weight_ih"),  # transposed
    (dict(weight_ih=np.zeros((0, 3)), weight_hh=np.zeros((0, 0))),
     "weight_hh"),
    (dict(weight_ih=np.zeros((12, 3)), weight_hh=np.zeros((12, 3))),
     "weight_hh"),
    (dict(weight_ih=np.zeros((12, 3)), weight_hh=np.zeros((12, 4)),
          bias_ih=np.zeros(12)), "bias_hh"),
    (dict(weight_ih=np.zeros((12, 3)), weight_hh=np.zeros((12, 4)),
          bias_ih=np.zeros(12), bias_hh=np.zeros(9)), "bias_hh"),
])
def test_from_torch_gru_rejects_inconsistent_shapes(kwargs, argument):
    from keras_rnn_plus.porting import from_torch_gru

    with pytest.raises(ValueError, match=argument):
        from_torch_gru(**kwargs)


@pytest.mark.parametrize("shapes, argument", [
    (((7, 8), (8,), (7, 3), (4,)), "candidate_kernel"),
    (((7, 8), (8,), (4, 4), (4,)), "candidate_kernel"),
    (((7, 6), (8,), (7, 4), (4,)), "gates_kernel"),
    (((7, 8), (6,), (7, 4), (4,)), "gates_bias"),
    (((7, 0), (0,), (7, 0), (0,)), "candidate_bias"),
])
def test_from_tf1_gru_cell_rejects_inconsistent_shapes(shapes, argument):
    from keras_rnn_plus.porting import from_tf1_gru_cell

    with pytest.raises(ValueError, match=argument):
        from_tf1_gru_cell(*(np.zeros(s) for s in shapes))
