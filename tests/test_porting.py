"""Porting Keras 2 (`tf_keras`) LSTMs to `krp.LSTM`.

Keras 2's LSTM up to 2.2 (and `tf.compat.v1.keras.layers.LSTM`) defaulted
to `recurrent_activation="hard_sigmoid"`, which in Keras 2 is
`clip(0.2 x + 0.5, 0, 1)`; Keras 3's `"hard_sigmoid"` is
`clip(x / 6 + 0.5, 0, 1)`. `krp.LSTM(recurrent_activation=
"keras2_hard_sigmoid", implementation=1)` with the Keras 2 weights must give
Keras 2's numbers.
"""

import itertools
import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from testing import (
    GRAD_ATOL,
    assert_close,
    gradients,
    random_inputs,
    randomize_weights,
)

import keras_rnn_plus as krp
from keras_rnn_plus.activations import keras2_hard_sigmoid
from keras_rnn_plus.porting import load_keras2_model

tf_keras = pytest.importorskip("tf_keras")

BATCH, STEPS, FEATURES, UNITS = 3, 6, 4, 5

# Fixed numbers: Keras 2's hard sigmoid, clip(0.2 x + 0.5, 0, 1), and
# Keras 3's, clip(x / 6 + 0.5, 0, 1), written out by hand.
POINTS = [-4.0, -2.5, -1.0, 0.0, 0.5, 1.0, 2.5, 4.0]
KERAS2_VALUES = [0.0, 0.0, 0.3, 0.5, 0.6, 0.7, 1.0, 1.0]
KERAS3_VALUES = [0.0, 1 / 12, 1 / 3, 0.5, 7 / 12, 2 / 3, 11 / 12, 1.0]


def test_keras2_hard_sigmoid_fixed_numbers():
    got = np.asarray(keras2_hard_sigmoid(np.array(POINTS, "float32")))
    np.testing.assert_allclose(got, KERAS2_VALUES, rtol=0, atol=1e-7)
    keras3 = np.asarray(
        keras.activations.hard_sigmoid(np.array(POINTS, "float32"))
    )
    np.testing.assert_allclose(keras3, KERAS3_VALUES, rtol=0, atol=1e-6)
    assert np.max(np.abs(keras3 - got)) > 0.02  # they do differ
    # And tf_keras's own hard_sigmoid is the Keras 2 one.
    legacy = tf_keras.activations.hard_sigmoid(tf.constant(POINTS)).numpy()
    np.testing.assert_allclose(legacy, KERAS2_VALUES, rtol=0, atol=1e-7)


def test_keras2_hard_sigmoid_by_name():
    layer = krp.LSTM(UNITS, recurrent_activation="keras2_hard_sigmoid")
    assert layer.recurrent_activation is keras2_hard_sigmoid
    assert krp.LSTM.from_config(layer.get_config()).recurrent_activation is (
        keras2_hard_sigmoid
    )


def _legacy_pair(x, **kwargs):
    """A tf_keras LSTM (Keras 2 defaults) and ours, with the same random
    weights; returns (legacy, ours)."""
    legacy = tf_keras.layers.LSTM(
        UNITS,
        recurrent_activation="hard_sigmoid",
        implementation=1,
        **kwargs,
    )
    ours = krp.LSTM(
        UNITS,
        recurrent_activation="keras2_hard_sigmoid",
        implementation=1,
        **kwargs,
    )
    legacy(tf.constant(x))
    ours(x)
    assert [w.shape for w in legacy.get_weights()] == [
        tuple(w.shape) for w in ours.weights
    ]
    randomize_weights(legacy, seed=3, scale=1.0)
    ours.set_weights(legacy.get_weights())
    return legacy, ours


FLAGS = list(itertools.product([False, True], repeat=3))


@pytest.mark.parametrize(
    "return_sequences, return_state, go_backwards",
    FLAGS,
    ids=["seq{:d}-state{:d}-back{:d}".format(*flags) for flags in FLAGS],
)
def test_outputs_match_tf_keras(return_sequences, return_state, go_backwards):
    x = random_inputs((BATCH, STEPS, FEATURES), seed=1)
    kwargs = dict(
        return_sequences=return_sequences,
        return_state=return_state,
        go_backwards=go_backwards,
    )
    legacy, ours = _legacy_pair(x, **kwargs)
    expected = legacy(tf.constant(x))
    got = ours(x)
    n_out = 3 if return_state else 1
    assert len(tf.nest.flatten(got)) == n_out
    assert_close(tf.nest.flatten(got), tf.nest.flatten(expected), atol=1e-5)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(use_bias=False),
        dict(unit_forget_bias=False, activation="relu"),
        dict(return_sequences=True, unroll=True),
    ],
    ids=["no-bias", "relu", "unroll"],
)
def test_other_arguments_match_tf_keras(kwargs):
    x = random_inputs((BATCH, STEPS, FEATURES), seed=2)
    legacy, ours = _legacy_pair(x, **kwargs)
    assert_close(ours(x), legacy(tf.constant(x)), atol=1e-5)


def test_mask_and_initial_state_match_tf_keras():
    x = random_inputs((BATCH, STEPS, FEATURES), seed=4)
    mask = np.ones((BATCH, STEPS), bool)
    mask[0, 4:] = False
    mask[1, 1:] = False
    h0 = random_inputs((BATCH, UNITS), seed=5)
    c0 = random_inputs((BATCH, UNITS), seed=6)
    legacy, ours = _legacy_pair(x, return_sequences=True, return_state=True)
    expected = legacy(
        tf.constant(x),
        mask=tf.constant(mask),
        initial_state=[tf.constant(h0), tf.constant(c0)],
    )
    got = ours(x, mask=mask, initial_state=[h0, c0])
    assert_close(got, expected, atol=1e-5)


def test_gradients_match_tf_keras():
    x = random_inputs((BATCH, STEPS, FEATURES), seed=7)
    legacy, ours = _legacy_pair(x, return_sequences=True)
    # A point where some gates sit on the linear part of the hard sigmoid.
    x = 0.3 * x

    expected, got = gradients(legacy, x), gradients(ours, x)
    assert len(got) == len(expected) == 4
    assert_close(got, expected, atol=GRAD_ATOL, what="gradients")
    assert np.max(np.abs(np.asarray(expected[0]))) > 1e-3


def test_keras3_hard_sigmoid_would_not_match():
    """The reason `keras2_hard_sigmoid` exists: Keras 3's `hard_sigmoid`
    gives other numbers for the same Keras 2 weights."""
    x = random_inputs((BATCH, STEPS, FEATURES), seed=8)
    legacy, _ = _legacy_pair(x)
    wrong = krp.LSTM(UNITS, recurrent_activation="hard_sigmoid")
    wrong(x)
    wrong.set_weights(legacy.get_weights())
    diff = np.max(np.abs(np.asarray(wrong(x)) - legacy(tf.constant(x))))
    assert diff > 1e-2


def _legacy_model():
    return tf_keras.Sequential(
        [
            tf_keras.Input((STEPS, FEATURES)),
            tf_keras.layers.LSTM(
                UNITS,
                recurrent_activation="hard_sigmoid",
                implementation=1,
                return_sequences=True,
            ),
            tf_keras.layers.LSTM(
                UNITS,
                recurrent_activation="hard_sigmoid",
                implementation=1,
                go_backwards=True,
            ),
            tf_keras.layers.Dense(2),
        ]
    )


def _ported_model():
    return keras.Sequential(
        [
            keras.Input((STEPS, FEATURES)),
            krp.LSTM(
                UNITS,
                recurrent_activation="keras2_hard_sigmoid",
                implementation=1,
                return_sequences=True,
            ),
            krp.LSTM(
                UNITS,
                recurrent_activation="keras2_hard_sigmoid",
                implementation=1,
                go_backwards=True,
            ),
            keras.layers.Dense(2),
        ]
    )


def _randomize_legacy(model):
    for i, layer in enumerate(model.layers):
        randomize_weights(layer, seed=i, scale=0.5)


def test_port_whole_model_with_get_weights():
    x = random_inputs((BATCH, STEPS, FEATURES), seed=9)
    legacy = _legacy_model()
    _randomize_legacy(legacy)
    ported = _ported_model()
    ported.set_weights(legacy.get_weights())
    assert_close(
        ported.predict(x, verbose=0),
        legacy.predict(x, verbose=0),
        atol=1e-5,
    )


def test_port_whole_model_with_keras2_weights_file(tmp_path):
    """Keras 2's HDF5 weights file (`save_weights("w.h5")`) loads into the
    ported Keras 3 model with `load_weights`."""
    x = random_inputs((BATCH, STEPS, FEATURES), seed=10)
    legacy = _legacy_model()
    _randomize_legacy(legacy)
    path = str(tmp_path / "keras2_weights.h5")
    legacy.save_weights(path)

    expected = legacy.predict(x, verbose=0)
    ported = _ported_model()
    before = ported.predict(x, verbose=0)
    assert np.max(np.abs(before - expected)) > 1e-3
    ported.load_weights(path)
    assert_close(ported.predict(x, verbose=0), expected, atol=1e-5)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_whole_keras2_h5_model_loads_with_custom_objects(tmp_path):
    """A Keras 2 `.h5` model file (config with `time_major` and
    `batch_input_shape`, `"hard_sigmoid"` meaning Keras 2's) loads with
    `custom_objects={"LSTM": krp.LSTM}` and gives Keras 2's numbers."""
    x = random_inputs((BATCH, STEPS, FEATURES), seed=11)
    legacy = _legacy_model()
    _randomize_legacy(legacy)
    path = str(tmp_path / "keras2_model.h5")
    legacy.save(path)
    expected = legacy.predict(x, verbose=0)
    with pytest.warns(UserWarning, match="keras2_hard_sigmoid"):
        ported = keras.models.load_model(
            path, custom_objects={"LSTM": krp.LSTM}, compile=False
        )
    lstms = [layer for layer in ported.layers if isinstance(layer, krp.LSTM)]
    assert len(lstms) == 2
    assert all(
        layer.recurrent_activation is keras2_hard_sigmoid for layer in lstms
    )
    assert_close(ported.predict(x, verbose=0), expected, atol=1e-5)


def test_keras2_layer_config_time_major_true_is_rejected():
    config = tf_keras.layers.LSTM(UNITS).get_config()
    with pytest.raises(ValueError, match="time_major"):
        krp.LSTM.from_config({**config, "time_major": True})


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("name", ["LSTMCell", "GRUCell"])
def test_keras2_cell_config_keeps_keras2_numbers(name):
    """A Keras 2 cell config (`implementation`, no `seed`) writes
    `"hard_sigmoid"`, Keras 2's formula: the cell built from it, with the
    Keras 2 cell's weights, gives Keras 2's numbers inside an RNN."""
    x = random_inputs((BATCH, STEPS, FEATURES), seed=12)
    legacy_cell = getattr(tf_keras.layers, name)(
        UNITS, recurrent_activation="hard_sigmoid")
    legacy = tf_keras.layers.RNN(legacy_cell, return_sequences=True)
    legacy(x)
    randomize_weights(legacy, seed=12)
    with pytest.warns(UserWarning, match="keras2_hard_sigmoid"):
        cell = getattr(krp, name).from_config(legacy_cell.get_config())
    layer = keras.layers.RNN(cell, return_sequences=True)
    layer.build((None, None, FEATURES))
    layer.set_weights(legacy.get_weights())
    assert_close(layer(x), legacy(x), atol=1e-6)
    # Keras 3's configs (which carry `seed`) keep Keras 3's hard sigmoid.
    keras3 = getattr(keras.layers, name)(UNITS,
                                         recurrent_activation="hard_sigmoid")
    ours = getattr(krp, name).from_config(keras3.get_config())
    assert ours.get_config()["recurrent_activation"] == "hard_sigmoid"


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_keras20_layer_config_without_time_major_keeps_keras2_numbers():
    """Keras 2.0's layer configs had no `time_major` (and `implementation`
    could be 0): `implementation` without `seed` marks them too."""
    x = random_inputs((BATCH, STEPS, FEATURES), seed=13)
    legacy = tf_keras.layers.LSTM(UNITS, recurrent_activation="hard_sigmoid")
    legacy(x)
    randomize_weights(legacy, seed=13)
    expected = legacy(x)
    config = legacy.get_config()
    del config["time_major"]
    config["implementation"] = 0
    with pytest.warns(UserWarning, match="keras2_hard_sigmoid"):
        ours = krp.LSTM.from_config(config)
    ours(x)
    ours.set_weights(legacy.get_weights())
    assert ours.implementation == 1
    assert_close(ours(x), expected, atol=1e-6)


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("name", ["LSTM", "GRU"])
def test_keras2_batch_input_shape_keeps_a_stateful_batch(name, tmp_path):
    """Keras 2 code `Sequential([LSTM(..., stateful=True,
    batch_input_shape=(batch, steps, features))])`: the batch size reaches
    the states, which carry over between calls as in Keras 2, and stays
    through the model's config and a legacy `.h5` file (whose loader
    passes it as `input_shape`)."""
    shape = (BATCH, STEPS, FEATURES)
    kwargs = dict(stateful=True, batch_input_shape=shape,
                  recurrent_activation="sigmoid")
    # Keras 2 took any sequence, such as a tensor's shape.
    assert getattr(krp, name)(UNITS, stateful=True, batch_input_shape=(
        tf.TensorShape(shape))).get_config()["batch_input_shape"] == shape
    theirs = tf_keras.Sequential([getattr(tf_keras.layers, name)(UNITS,
                                                                 **kwargs)])
    ours = keras.Sequential([getattr(krp, name)(UNITS, **kwargs)])
    ours.set_weights([0.5 * w for w in theirs.get_weights()])
    theirs.set_weights(ours.get_weights())
    for seed in (1, 2):
        x = random_inputs(shape, seed=seed)
        assert_close(ours.predict(x, verbose=0),
                     theirs.predict(x, verbose=0), atol=1e-5)
    # The batch size survives the model's config and a legacy `.h5` file.
    rebuilt = keras.models.model_from_json(ours.to_json())
    assert rebuilt.layers[0].states[0].shape[0] == BATCH
    for layer in (theirs.layers[0], ours.layers[0]):
        layer.reset_states()
    ours.save(tmp_path / "m.h5")
    reloaded = keras.models.load_model(tmp_path / "m.h5")
    for seed in (1, 2):
        x = random_inputs(shape, seed=seed)
        assert_close(reloaded.predict(x, verbose=0),
                     theirs.predict(x, verbose=0), atol=1e-5)


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("suffix, functional", [
    (".h5", False),
    (".keras", True),
    # The other two pairs run with the long tests (`pytest -m slow`).
    pytest.param(".keras", False, marks=pytest.mark.slow),
    pytest.param(".h5", True, marks=pytest.mark.slow),
])
def test_load_keras2_model_with_nested_recurrent_layers(tmp_path, suffix,
                                                        functional):
    """Keras 2 models with LSTM / GRU inside `Bidirectional`, cells inside
    `RNN`, other Keras 2 recurrent layers and Keras 2's `"hard_sigmoid"`
    in any layer (which `load_model` with `custom_objects` cannot read, or
    reads with Keras 3's formula) load with `load_keras2_model`, as ours,
    with Keras 2's numbers."""
    ids = np.random.RandomState(14).randint(1, 10, (BATCH, STEPS))
    ids[0, 4:] = 0  # padding, masked by the embedding
    layers = tf_keras.layers
    stack = [
        layers.Embedding(10, FEATURES, mask_zero=True),
        layers.Bidirectional(layers.LSTM(
            UNITS, recurrent_activation="hard_sigmoid",
            return_sequences=True)),
        layers.RNN(layers.GRUCell(3, recurrent_activation="hard_sigmoid"),
                   return_sequences=True),
        layers.SimpleRNN(3, return_sequences=True),  # Keras 3's, loaded
        layers.Bidirectional(layers.GRU(2), merge_mode="sum"),
        layers.Dense(2, activation="hard_sigmoid"),
    ]
    inputs = tf_keras.Input((STEPS,))
    if functional:
        outputs = inputs
        for layer in stack:
            outputs = layer(outputs)
        legacy = tf_keras.Model(inputs, outputs)
    else:
        legacy = tf_keras.Sequential([inputs, *stack])
    _randomize_legacy(legacy)
    path = str(tmp_path / f"keras2_model{suffix}")
    legacy.save(path)
    ported = load_keras2_model(path)
    kinds = [type(layer) for layer in ported._flatten_layers()]
    assert {krp.LSTM, krp.GRUCell, krp.GRU} <= set(kinds)
    assert_close(ported.predict(ids, verbose=0),
                 legacy.predict(ids, verbose=0), atol=1e-5)


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("suffix", [".h5", ".keras"])
def test_load_keras2_model_trained_under_mixed_precision(tmp_path, suffix):
    """A Keras 2 model saved under `mixed_float16` (its layer configs hold
    Keras 2's policy configs, which Keras 3 cannot read) loads with the
    same policies and Keras 2's numbers."""
    tf_keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        legacy = tf_keras.Sequential([
            tf_keras.Input((STEPS, FEATURES)),
            tf_keras.layers.LSTM(UNITS, return_sequences=True),
            tf_keras.layers.GRU(3),
            tf_keras.layers.Dense(2, dtype="float32"),
        ])
    finally:
        tf_keras.mixed_precision.set_global_policy("float32")
    _randomize_legacy(legacy)
    x = np.random.RandomState(15).randn(BATCH, STEPS, FEATURES)
    path = str(tmp_path / f"keras2_model{suffix}")
    legacy.save(path)
    ported = load_keras2_model(path)
    assert [layer.dtype_policy.name for layer in ported.layers] == [
        "mixed_float16", "mixed_float16", "float32"
    ]
    assert_close(ported.predict(x, verbose=0), legacy.predict(x, verbose=0),
                 atol=1e-3)


def test_keras2_config_with_a_policy_reads_the_policy():
    """`from_config` of a Keras 2 config saved under a mixed policy."""
    tf_keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        config = tf_keras.layers.LSTM(UNITS).get_config()
    finally:
        tf_keras.mixed_precision.set_global_policy("float32")
    assert isinstance(config["dtype"], dict)  # Keras 2's policy config
    layer = krp.LSTM.from_config(config)
    assert layer.dtype_policy.name == "mixed_float16"


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("suffix", [
    ".h5", pytest.param(".keras", marks=pytest.mark.slow)])  # time budget
def test_load_keras2_model_encoder_decoder(tmp_path, suffix):
    """Keras 2 saved a call given `initial_state` as a node whose inputs
    after the first are the states (the encoder-decoder of Keras 2's
    examples); Keras 3 reads such a node as one list input, which its
    recurrent layers refuse. It loads as the call with `initial_state`,
    for our layers and Keras's `Bidirectional`, with Keras 2's numbers."""
    layers = tf_keras.layers
    encoder_in = tf_keras.Input((None, FEATURES))
    _, h, c = layers.LSTM(UNITS, return_state=True)(encoder_in)
    decoder_in = tf_keras.Input((None, 3))
    decoded = layers.LSTM(UNITS, return_sequences=True)(
        decoder_in, initial_state=[h, c])
    tagged = layers.Bidirectional(layers.GRU(UNITS, return_sequences=True))(
        decoder_in, initial_state=[h, c])
    legacy = tf_keras.Model([encoder_in, decoder_in],
                            [layers.Dense(2)(decoded), tagged])
    ported = _ported_two_input_model(legacy, tmp_path / f"seq2seq{suffix}")
    assert {krp.LSTM, krp.GRU} <= {type(layer)
                                   for layer in ported._flatten_layers()}


def _ported_two_input_model(legacy, path):
    """`legacy` (inputs `(batch, time, FEATURES)`, `(batch, time, 3)`),
    randomized, saved to `path` and loaded: the outputs agree."""
    _randomize_legacy(legacy)
    x = [random_inputs((BATCH, STEPS, FEATURES), seed=16),
         random_inputs((BATCH, 4, 3), seed=17)]
    legacy.save(str(path))
    ported = load_keras2_model(str(path))
    for ours, theirs in zip(ported.predict(x, verbose=0),
                            legacy.predict(x, verbose=0)):
        assert_close(ours, theirs, atol=1e-5)
    return ported


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("suffix", [
    ".h5", pytest.param(".keras", marks=pytest.mark.slow)])  # time budget
def test_load_keras2_model_with_nested_models(tmp_path, suffix):
    """Models used as layers (an encoder `Model` called twice, its states
    handed to a decoder; `Sequential` models, with and without an
    `Input`): Keras 2 numbers a nested model's calls from 1, Keras 3
    from 0; they load, with Keras 2's numbers."""
    layers = tf_keras.layers
    encoder_in = tf_keras.Input((None, FEATURES))
    encoder = tf_keras.Model(
        encoder_in, layers.LSTM(UNITS, return_state=True)(encoder_in),
        name="encoder")
    with_input = tf_keras.Sequential(
        [tf_keras.Input((None, 3)), layers.Dense(3)], name="with_input")
    lazy = tf_keras.Sequential([layers.Dense(3)], name="lazy")
    x, d = tf_keras.Input((None, FEATURES)), tf_keras.Input((None, 3))
    _, h, c = encoder(x)
    _, h2, _ = encoder(x)  # a second call: node 2 in Keras 2
    decoded = layers.LSTM(UNITS)(lazy(with_input(d)), initial_state=[h, c])
    legacy = tf_keras.Model([x, d], [decoded, h2])
    _ported_two_input_model(legacy, tmp_path / f"nested{suffix}")


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_load_keras2_model_safe_mode(tmp_path):
    """A trusted Keras 2 file with a `Lambda` loads with
    `safe_mode=False`, as with `keras.models.load_model`, and is refused
    by default."""
    inputs = tf_keras.Input((STEPS, FEATURES))
    hidden = tf_keras.layers.LSTM(UNITS, return_sequences=True)(inputs)
    last = tf_keras.layers.Lambda(lambda t: t[:, -1], output_shape=(UNITS,))
    legacy = tf_keras.Model(inputs, tf_keras.layers.Dense(2)(last(hidden)))
    _randomize_legacy(legacy)
    path = str(tmp_path / "lambda.h5")
    legacy.save(path)
    with pytest.raises(ValueError, match="Lambda"):
        load_keras2_model(path)
    ported = load_keras2_model(path, safe_mode=False)
    x = random_inputs((BATCH, STEPS, FEATURES), seed=22)
    assert_close(ported.predict(x, verbose=0), legacy.predict(x, verbose=0),
                 atol=1e-5)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_load_keras20_gru_model_without_reset_after(tmp_path):
    """A GRU config from Keras before 2.1.3 has no `reset_after`: that GRU
    was the `reset_after=False` one (one bias vector). Its file loads,
    with Keras 2's numbers; `from_config` reads it the same way (and a
    Keras 3 config without the key keeps Keras 3's default)."""
    import h5py

    legacy = tf_keras.Sequential([
        tf_keras.Input((STEPS, FEATURES)),
        tf_keras.layers.GRU(UNITS, recurrent_activation="hard_sigmoid",
                            reset_after=False),
    ])
    _randomize_legacy(legacy)
    path = str(tmp_path / "keras20_gru.h5")
    legacy.save(path)
    with h5py.File(path, "r+") as f:  # what Keras 2.0 wrote
        config = json.loads(f.attrs["model_config"])
        gru = config["config"]["layers"][-1]["config"]
        del gru["reset_after"], gru["time_major"]
        gru["implementation"] = 0
        f.attrs["model_config"] = json.dumps(config)
    x = random_inputs((BATCH, STEPS, FEATURES), seed=18)
    ported = load_keras2_model(path)
    assert ported.layers[-1].reset_after is False
    assert_close(ported.predict(x, verbose=0), legacy.predict(x, verbose=0),
                 atol=1e-6)
    assert krp.GRUCell.from_config(
        {"units": 2, "implementation": 1}).reset_after is False
    keras3 = keras.layers.GRU(2).get_config()
    del keras3["reset_after"]
    assert krp.GRU.from_config(keras3).reset_after is True


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_load_keras2_model_stacked_cells_named_without_module(
        tmp_path, monkeypatch):
    """TensorFlow's bundled Keras 2 (and standalone Keras 2) name the
    classes of `RNN([cell, cell])` without a module; they load."""
    pytest.importorskip("tensorflow.python.keras.layers.recurrent")
    import tensorflow.python.keras as keras2
    from tensorflow.python.keras import layers, models
    from tensorflow.python.keras.layers import recurrent

    # The bundled Keras 2 writes its version into the file; it has none.
    monkeypatch.setattr(keras2, "__version__", "2.15.0", raising=False)
    legacy = models.Sequential([
        layers.InputLayer((STEPS, FEATURES)),
        recurrent.RNN([recurrent.LSTMCell(3), recurrent.SimpleRNNCell(2)]),
    ])
    x = random_inputs((BATCH, STEPS, FEATURES), seed=19)
    expected = legacy(x)
    config = json.loads(legacy.to_json())
    assert "module" not in json.dumps(config)
    path = str(tmp_path / "stacked.h5")
    legacy.save(path)
    ported = load_keras2_model(path)
    assert isinstance(ported.layers[-1].cell.cells[0], krp.LSTMCell)
    assert_close(ported.predict(x, verbose=0), expected, atol=1e-6)


@pytest.mark.parametrize("suffix", [".h5", ".keras"])
def test_load_keras2_model_refuses_a_keras3_file(tmp_path, suffix):
    """A Keras 3 file is not read as Keras 2's (its `"hard_sigmoid"` is
    Keras 3's function, which Keras 2's reading would change)."""
    model = keras.Sequential([
        keras.Input((STEPS, FEATURES)),
        keras.layers.LSTM(UNITS, recurrent_activation="hard_sigmoid"),
    ])
    path = str(tmp_path / f"keras3{suffix}")
    model.save(path)
    with pytest.raises(ValueError, match="keras.saving.load_model"):
        load_keras2_model(path)


def test_load_keras2_model_refuses_a_directory(tmp_path):
    with pytest.raises(ValueError, match="model.h5"):
        load_keras2_model(str(tmp_path))


def test_load_keras2_model_rejects_a_weights_file(tmp_path):
    path = str(tmp_path / "keras2.weights.h5")
    _legacy_model().save_weights(path)
    with pytest.raises(ValueError, match="load_weights"):
        load_keras2_model(path)


def _cudnn_legacy_model():
    """A Keras 2 model with `CuDNNLSTM` (also inside `Bidirectional`),
    `CuDNNGRU` and a plain LSTM, random weights (building them needs no
    GPU; running them does)."""
    from tf_keras.src.layers.rnn.cudnn_gru import CuDNNGRU
    from tf_keras.src.layers.rnn.cudnn_lstm import CuDNNLSTM

    inputs = tf_keras.Input((None, FEATURES))
    y = tf_keras.layers.Bidirectional(
        CuDNNLSTM(UNITS, return_sequences=True))(inputs)
    y = CuDNNGRU(3, return_sequences=True)(y)
    y = tf_keras.layers.LSTM(4, return_sequences=True)(y)
    y = CuDNNLSTM(2)(y)
    model = tf_keras.Model(inputs, y)
    rs = np.random.RandomState(15)
    model.set_weights([rs.uniform(-0.6, 0.6, w.shape)
                       for w in model.get_weights()])
    return model


def _keras2_non_cudnn_twin(cudnn_model, path):
    """Keras 2's own route for a cuDNN model on a CPU: the same model with
    `LSTM` / `GRU(reset_after=True)`, loading the cuDNN weights file with
    Keras 2's converter."""
    layers = tf_keras.layers
    inputs = tf_keras.Input((None, FEATURES))
    y = layers.Bidirectional(layers.LSTM(UNITS, return_sequences=True))(
        inputs)
    y = layers.GRU(3, return_sequences=True, reset_after=True)(y)
    y = layers.LSTM(4, return_sequences=True)(y)
    y = layers.LSTM(2)(y)
    twin = tf_keras.Model(inputs, y)
    twin.load_weights(path)
    return twin


def test_load_keras2_model_with_cudnn_layers(tmp_path):
    """Keras 2's `CuDNNLSTM` / `CuDNNGRU` (GPU-only there) load as our
    `LSTM` / `GRU` with `load_keras2_model`, giving the numbers of Keras
    2's own conversion of their weights to `LSTM` / `GRU`; a `tf_keras`
    `.keras` file with them gets a clear error."""
    legacy = _cudnn_legacy_model()
    path = str(tmp_path / "cudnn.h5")
    legacy.save(path)
    expected = _keras2_non_cudnn_twin(legacy, path)
    x = random_inputs((BATCH, STEPS, FEATURES), seed=16)
    ported = load_keras2_model(path)
    kinds = [type(layer) for layer in ported._flatten_layers()]
    assert kinds.count(krp.LSTM) == 4 and kinds.count(krp.GRU) == 1
    reference = expected.predict(x, verbose=0)
    assert np.abs(reference).max() > 0.05
    assert_close(ported.predict(x, verbose=0), reference, atol=1e-5)
    keras_file = str(tmp_path / "cudnn.keras")
    legacy.save(keras_file)
    with pytest.raises(ValueError, match="CuDNNGRU and CuDNNLSTM.*h5"):
        load_keras2_model(keras_file)


@pytest.mark.parametrize("layer", ["CuDNNLSTM", "CuDNNGRU"])
def test_from_keras2_cudnn_matches_keras2_conversion(layer):
    """`from_keras2_cudnn` against Keras 2's own converter of cuDNN weights
    (`_convert_rnn_weights`, which `load_weights` uses)."""
    from tf_keras.src.layers.rnn import cudnn_gru, cudnn_lstm
    from tf_keras.src.saving.legacy import hdf5_format

    from keras_rnn_plus.porting import from_keras2_cudnn

    if layer == "CuDNNLSTM":
        cudnn = cudnn_lstm.CuDNNLSTM(UNITS)
        target, ours = tf_keras.layers.LSTM(UNITS), krp.LSTM(UNITS)
    else:
        cudnn = cudnn_gru.CuDNNGRU(UNITS)
        target = tf_keras.layers.GRU(UNITS, reset_after=True)
        ours = krp.GRU(UNITS)
    cudnn.build((None, None, FEATURES))
    target.build((None, None, FEATURES))
    rs = np.random.RandomState(17)
    weights = [rs.standard_normal(w.shape) for w in cudnn.get_weights()]
    expected = hdf5_format._convert_rnn_weights(target, weights)
    converted = from_keras2_cudnn(*weights)
    assert_close(converted, expected, atol=0, rtol=0)
    ours.build((None, None, FEATURES))
    ours.set_weights(converted)  # our shapes


@pytest.mark.parametrize("shapes, argument", [
    (((3, 8), (2, 5), (16,)), "recurrent_kernel"),
    (((3, 6), (2, 8), (16,)), "kernel"),
    (((3, 8), (2, 8), (8,)), "bias"),
])
def test_from_keras2_cudnn_rejects_inconsistent_shapes(shapes, argument):
    from keras_rnn_plus.porting import from_keras2_cudnn

    with pytest.raises(ValueError, match=argument):
        from_keras2_cudnn(*(np.zeros(s) for s in shapes))


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("suffix", [".h5", ".keras"])
def test_load_keras2_model_cudnn_in_a_name_only(tmp_path, suffix):
    """Only cuDNN classes count: a layer merely named after one loads
    from either file kind, with Keras 2's numbers."""
    legacy = tf_keras.Sequential([
        tf_keras.Input((None, FEATURES)),
        tf_keras.layers.LSTM(UNITS, name="CuDNNLSTM_replaced"),
    ])
    _randomize_legacy(legacy)
    path = str(tmp_path / f"named{suffix}")
    legacy.save(path)
    x = random_inputs((BATCH, STEPS, FEATURES), seed=18)
    assert_close(load_keras2_model(path).predict(x, verbose=0),
                 legacy.predict(x, verbose=0), atol=1e-5)
