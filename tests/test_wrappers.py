"""krp.LSTM and krp.GRU inside Keras's wrappers and compositions:
`Bidirectional`, `RNN(cell)`, `RNN([cells])` (StackedRNNCells), stacked
layers and an encoder-decoder, each equal to the same construction over
Keras's layers (copied weights) and saved, reloaded and exported."""

import json

import keras
import numpy as np
import pytest
from testing import (
    GRAD_ATOL,
    assert_close,
    gradients,
    random_inputs,
    randomize_weights,
    run_python,
)

import keras_rnn_plus as krp

UNITS = 4
LAYERS = {"lstm": (keras.layers.LSTM, krp.LSTM),
          "gru": (keras.layers.GRU, krp.GRU)}
CELLS = {"lstm": (keras.layers.LSTMCell, krp.LSTMCell),
         "gru": (keras.layers.GRUCell, krp.GRUCell)}
N_STATES = {"lstm": 2, "gru": 1}


def copy_weights(ref, ours, *inputs, **call_kwargs):
    """Build both on `inputs`, randomize the reference, copy it to ours."""
    ref(*inputs, **call_kwargs)
    ours(*inputs, **call_kwargs)
    randomize_weights(ref)
    ours.set_weights(ref.get_weights())
    return ref, ours


class _Flat:
    """A layer whose (possibly nested) outputs come as one flat list."""

    def __init__(self, layer):
        self.layer = layer
        self.trainable_weights = layer.trainable_weights

    def __call__(self, *args, **kwargs):
        return keras.tree.flatten(self.layer(*args, **kwargs))


def check_parity(ref, ours, x, **call_kwargs):
    ref, ours = _Flat(ref), _Flat(ours)
    assert_close(ours(x, **call_kwargs), ref(x, **call_kwargs))
    assert_close(gradients(ours, x, **call_kwargs),
                 gradients(ref, x, **call_kwargs),
                 atol=GRAD_ATOL, what="gradients")


# -- Bidirectional ------------------------------------------------------------
def bidirectional(cls, merge_mode="concat", backward_kwargs=None, **kwargs):
    backward = None
    if backward_kwargs is not None:
        backward = cls(UNITS, go_backwards=True,
                       **{**kwargs, **backward_kwargs})
    return keras.layers.Bidirectional(cls(UNITS, **kwargs),
                                      merge_mode=merge_mode,
                                      backward_layer=backward)


BIDI_GRID = [
    (kind, merge, seq, state)
    for kind in LAYERS
    for merge in ["concat", "sum", "mul", "ave", None]
    for seq, state in [(True, True), (False, False)]
] + [(kind, "concat", seq, state) for kind in LAYERS
     for seq, state in [(True, False), (False, True)]]


@pytest.mark.parametrize("kind, merge_mode, return_sequences, return_state",
                         BIDI_GRID)
def test_bidirectional_equals_keras(kind, merge_mode, return_sequences,
                                    return_state):
    x = random_inputs((3, 5, 4))
    ref_cls, our_cls = LAYERS[kind]
    kw = dict(merge_mode=merge_mode, return_sequences=return_sequences,
              return_state=return_state)
    ref, ours = copy_weights(bidirectional(ref_cls, **kw),
                             bidirectional(our_cls, **kw), x)
    assert isinstance(ours.forward_layer, our_cls)
    assert isinstance(ours.backward_layer, our_cls)
    assert ours.backward_layer.go_backwards
    check_parity(ref, ours, x)


@pytest.mark.parametrize("kind", list(LAYERS))
def test_bidirectional_initial_states_for_both_directions(kind):
    x = random_inputs((3, 5, 4))
    states = [random_inputs((3, UNITS), seed=10 + i)
              for i in range(2 * N_STATES[kind])]
    ref_cls, our_cls = LAYERS[kind]
    kw = dict(return_sequences=True, return_state=True)
    ref, ours = copy_weights(bidirectional(ref_cls, **kw),
                             bidirectional(our_cls, **kw), x)
    got = ours(x, initial_state=states)
    assert_close(got, ref(x, initial_state=states))
    # Not vacuous: the given states change the outputs (the comparison
    # with Keras above shows that each half starts from its own).
    assert not np.allclose(np.asarray(got[0]), np.asarray(ours(x)[0]))


def _backward_kwargs(kind):
    if kind == "lstm":
        return dict(activation="relu", unit_forget_bias=False,
                    implementation=1)
    return dict(reset_after=False, activation="relu", implementation=1)


@pytest.mark.parametrize("kind", list(LAYERS))
def test_bidirectional_explicit_backward_layer(kind):
    x = random_inputs((3, 5, 4))
    ref_cls, our_cls = LAYERS[kind]
    back = _backward_kwargs(kind)
    ref_back = {k: v for k, v in back.items() if k != "implementation"}
    kw = dict(merge_mode="sum", return_sequences=True)
    ref, ours = copy_weights(
        bidirectional(ref_cls, backward_kwargs=ref_back, **kw),
        bidirectional(our_cls, backward_kwargs=back, **kw), x)
    assert ours.backward_layer.implementation == 1
    check_parity(ref, ours, x)
    again = keras.layers.Bidirectional.from_config(ours.get_config())
    again(x)
    again.set_weights(ours.get_weights())
    assert_close(again(x), ours(x))
    assert again.backward_layer.get_config() == (
        ours.backward_layer.get_config())


@pytest.mark.parametrize("kind", list(LAYERS))
@pytest.mark.parametrize("return_sequences", [True, False])
def test_bidirectional_masking(kind, return_sequences):
    x = random_inputs((4, 6, 3))
    mask = np.ones((4, 6), bool)
    mask[1, 4:] = False  # right padding
    mask[2, :3] = False  # left padding
    mask[3] = False  # nothing at all
    x[~mask] = 0.0
    ref_cls, our_cls = LAYERS[kind]
    kw = dict(return_sequences=return_sequences, return_state=True)
    ref, ours = copy_weights(bidirectional(ref_cls, **kw),
                             bidirectional(our_cls, **kw), x)
    check_parity(ref, ours, x, mask=mask)

    def model(cls):
        inp = keras.Input((6, 3))
        out = bidirectional(cls, merge_mode="ave",
                            return_sequences=return_sequences)(
            keras.layers.Masking(0.0)(inp))
        return keras.Model(inp, out)

    ref_model, our_model = model(ref_cls), model(our_cls)
    randomize_weights(ref_model)
    our_model.set_weights(ref_model.get_weights())
    assert_close(our_model(x), ref_model(x))


def _all_non_default(kind):
    kw = dict(
        activation="relu",
        recurrent_activation="keras2_hard_sigmoid",
        use_bias=False,
        kernel_initializer=keras.initializers.HeNormal(seed=1),
        recurrent_initializer=keras.initializers.Orthogonal(0.5, seed=2),
        bias_initializer="ones",
        kernel_regularizer=keras.regularizers.L2(0.01),
        recurrent_regularizer=keras.regularizers.L1(0.01),
        bias_regularizer=keras.regularizers.L1L2(0.01, 0.02),
        activity_regularizer=keras.regularizers.L2(0.03),
        kernel_constraint=keras.constraints.MaxNorm(3.0),
        recurrent_constraint=keras.constraints.NonNeg(),
        bias_constraint=keras.constraints.UnitNorm(),
        dropout=0.2,
        recurrent_dropout=0.1,
        implementation=1,
        return_sequences=True,
        return_state=True,
        unroll=True,
        seed=5,
        use_cudnn=False,
    )
    if kind == "lstm":
        kw["unit_forget_bias"] = False
    else:
        kw["reset_after"] = False
    return kw


@pytest.mark.parametrize("kind", list(LAYERS))
def test_bidirectional_rebuilds_both_halves_from_config(kind):
    """Bidirectional re-creates the forward and backward layers from
    `get_config()`: every argument must survive, and so the numbers."""
    layer = LAYERS[kind][1](UNITS, **_all_non_default(kind))
    bidi = keras.layers.Bidirectional(layer)
    # Bidirectional itself sets zero_output_for_mask = return_sequences.
    skip = {"name", "go_backwards", "zero_output_for_mask"}
    want = {k: v for k, v in layer.get_config().items() if k not in skip}
    for half, backwards in [(bidi.forward_layer, False),
                            (bidi.backward_layer, True)]:
        config = half.get_config()
        assert config["go_backwards"] is backwards
        assert {k: v for k, v in config.items() if k not in skip} == want
        assert type(half) is type(layer)
    again = keras.layers.Bidirectional.from_config(
        json.loads(json.dumps(bidi.get_config())))
    x = random_inputs((2, 4, 3))
    bidi(x), again(x)
    again.set_weights(bidi.get_weights())
    assert_close(again(x, training=True), bidi(x, training=True), atol=0)


# -- RNN(cell) and stacked cells -----------------------------------------------
CELL_SPECS = {
    "lstm": [("lstm", {})],
    "gru": [("gru", {})],
    "gru_reset_before": [("gru", dict(reset_after=False))],
    "stack": [("lstm", {}), ("gru", dict(reset_after=False)),
              ("lstm", dict(implementation=1))],
    "stack_gru": [("gru", dict(implementation=1)), ("gru", {})],
}


def make_cells(spec, ours, **extra):
    cells = []
    for kind, kw in spec:
        cls = CELLS[kind][1 if ours else 0]
        kw = dict(kw, **extra)
        if not ours:
            kw.pop("implementation", None)
        cells.append(cls(UNITS, **kw))
    return cells if len(cells) > 1 else cells[0]


@pytest.mark.parametrize("name", list(CELL_SPECS))
def test_rnn_over_cells_equals_keras(name):
    x = random_inputs((3, 5, 4))
    kw = dict(return_sequences=True, return_state=True)
    ref = keras.layers.RNN(make_cells(CELL_SPECS[name], False), **kw)
    ours = keras.layers.RNN(make_cells(CELL_SPECS[name], True), **kw)
    copy_weights(ref, ours, x)
    check_parity(ref, ours, x)
    again = keras.layers.RNN.from_config(
        json.loads(json.dumps(ours.get_config())))
    again(x)
    again.set_weights(ours.get_weights())
    assert_close(again(x), ours(x))
    cells = getattr(again.cell, "cells", [again.cell])
    assert all(type(c).__module__.startswith("keras_rnn_plus")
               for c in cells)


@pytest.mark.parametrize("name", ["gru", "stack"])
def test_rnn_over_cells_dropout_like_keras(name):
    x = random_inputs((3, 5, 4))
    spec = CELL_SPECS[name]
    drop = dict(dropout=0.3, recurrent_dropout=0.2, seed=7)
    ref = keras.layers.RNN(make_cells(spec, False, **drop),
                           return_sequences=True)
    ours = keras.layers.RNN(make_cells(spec, True, **drop),
                            return_sequences=True)
    copy_weights(ref, ours, x)
    for _ in range(2):
        assert_close(ours(x, training=True), ref(x, training=True))
    assert_close(ours(x), ref(x))


def test_rnn_over_cells_with_mask_and_initial_state():
    x = random_inputs((3, 6, 4))
    mask = np.ones((3, 6), bool)
    mask[0, 4:] = False
    mask[2, :2] = False
    spec = CELL_SPECS["stack"]
    states = [[random_inputs((3, UNITS), 1), random_inputs((3, UNITS), 2)],
              [random_inputs((3, UNITS), 3)],
              [random_inputs((3, UNITS), 4), random_inputs((3, UNITS), 5)]]
    kw = dict(return_sequences=True, go_backwards=True)
    ref = keras.layers.RNN(make_cells(spec, False), **kw)
    ours = keras.layers.RNN(make_cells(spec, True), **kw)
    copy_weights(ref, ours, x)
    assert_close(ours(x, mask=mask, initial_state=states),
                 ref(x, mask=mask, initial_state=states))


# -- stacks of layers and an encoder-decoder ----------------------------------
def stacked_lstm(lstm):
    inp = keras.Input((6, 3))
    h = lstm(UNITS, return_sequences=True)(inp)
    h = lstm(UNITS, return_sequences=True, go_backwards=True)(h)
    h = lstm(UNITS, return_sequences=True)(h)
    return keras.Model(inp, keras.layers.Dense(2)(h))


def encoder_decoder(rnn):
    """The encoder's final states are the decoder's initial states."""
    enc_in, dec_in = keras.Input((6, 3)), keras.Input((5, 2))
    _, *states = rnn(UNITS, return_state=True)(
        keras.layers.Masking(0.0)(enc_in))
    seq = rnn(UNITS, return_sequences=True)(dec_in, initial_state=states)
    return keras.Model([enc_in, dec_in], keras.layers.Dense(3)(seq))


def bidi_encoder_decoder(gru):
    """A bidirectional encoder whose two final states, joined, start a
    decoder twice as wide."""
    enc_in, dec_in = keras.Input((6, 3)), keras.Input((5, 2))
    _, h_fwd, h_bwd = keras.layers.Bidirectional(
        gru(UNITS, return_state=True))(enc_in)
    h = keras.layers.Concatenate()([h_fwd, h_bwd])
    seq = gru(2 * UNITS, return_sequences=True)(dec_in, initial_state=h)
    return keras.Model([enc_in, dec_in], seq)


def _seq2seq_inputs():
    enc = random_inputs((3, 6, 3), seed=4)
    enc[1, 4:] = 0.0  # a padded source sequence
    return [enc, random_inputs((3, 5, 2), seed=5)]


@pytest.mark.parametrize("which", ["stacked", "enc_dec_lstm",
                                   "bidi_enc_dec"])
def test_functional_compositions_equal_keras(which):
    if which == "stacked":
        ref, ours = stacked_lstm(keras.layers.LSTM), stacked_lstm(krp.LSTM)
        x = random_inputs((3, 6, 3))
    elif which == "bidi_enc_dec":
        ref = bidi_encoder_decoder(keras.layers.GRU)
        ours = bidi_encoder_decoder(krp.GRU)
        x = _seq2seq_inputs()
    else:
        ref_cls, our_cls = LAYERS[which.split("_")[-1]]
        ref, ours = encoder_decoder(ref_cls), encoder_decoder(our_cls)
        x = _seq2seq_inputs()
    randomize_weights(ref)
    ours.set_weights(ref.get_weights())
    assert_close(ours.predict(x, verbose=0), ref.predict(x, verbose=0))
    # and they train: one step moves both the same way
    y = ref.predict(x, verbose=0) * 0.0 + 0.5
    for m in (ref, ours):
        m.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
        m.train_on_batch(x, y)
    assert_close(ours.get_weights(), ref.get_weights(), atol=1e-5)


# -- .keras files and SavedModel export in fresh processes --------------------
def _saved_models():
    """name -> (model, inputs); all with our layers only."""
    x = random_inputs((3, 6, 3), seed=9)
    x[0, 4:] = 0.0
    masked_in = keras.Input((6, 3))
    bidi_lstm = keras.Model(masked_in, keras.layers.Bidirectional(
        krp.LSTM(UNITS, return_sequences=True, implementation=1,
                 recurrent_activation="keras2_hard_sigmoid"),
        merge_mode="mul")(keras.layers.Masking(0.0)(masked_in)))
    bidi_gru = keras.Sequential([
        keras.Input((6, 3)),
        bidirectional(krp.GRU, merge_mode="concat",
                      backward_kwargs=dict(reset_after=False,
                                           implementation=1)),
    ])
    cells_in = keras.Input((6, 3))
    rnn_cells = keras.Model(cells_in, keras.layers.RNN(
        make_cells(CELL_SPECS["stack"], True), return_sequences=True)(
            cells_in))
    rnn_cell = keras.Sequential([keras.Input((6, 3)), keras.layers.RNN(
        krp.GRUCell(UNITS, reset_after=False))])
    return {
        "bidi_lstm": (bidi_lstm, [x]),
        "bidi_gru": (bidi_gru, [x]),
        "rnn_cells": (rnn_cells, [x]),
        "rnn_cell": (rnn_cell, [x]),
        "stacked": (stacked_lstm(krp.LSTM), [x]),
        "enc_dec": (encoder_decoder(krp.LSTM), _seq2seq_inputs()),
        "bidi_enc_dec": (bidi_encoder_decoder(krp.GRU), _seq2seq_inputs()),
    }


def _inputs(root, name):
    data = np.load(f"{root}/{name}_x.npz")
    return [data[f"x{i}"] for i in range(len(data.files))]


KERAS_LOAD = """
import json, sys
import numpy as np, keras
import keras_rnn_plus
root, names, report = sys.argv[1], sys.argv[2].split(","), {}
for name in names:
    model = keras.models.load_model(f"{root}/{name}.keras")
    data = np.load(f"{root}/{name}_x.npz")
    x = [data[f"x{i}"] for i in range(len(data.files))]
    x = x[0] if len(x) == 1 else x
    layers = []
    for layer in model._flatten_layers(include_self=False):
        layers.append(type(layer).__module__)
    report[name] = dict(y=model.predict(x, verbose=0).tolist(),
                        modules=sorted(set(layers)))
print("REPORT" + json.dumps(report))
"""

SERVE = """
import json, sys
import numpy as np, tensorflow as tf
root, names, report = sys.argv[1], sys.argv[2].split(","), {}
for name in names:
    data = np.load(f"{root}/{name}_x.npz")
    x = [tf.constant(data[f"x{i}"]) for i in range(len(data.files))]
    served = tf.saved_model.load(f"{root}/{name}_export")
    y = served.serve(x[0] if len(x) == 1 else x)
    report[name] = np.asarray(y).tolist()
assert not [m for m in sys.modules if m.startswith("keras_rnn_plus")]
print("REPORT" + json.dumps(report))
"""


def _report(code, root, names):
    out = run_python(
        f"import sys; sys.argv[1:] = [{str(root)!r}, {','.join(names)!r}]\n"
        + code)
    line = [s for s in out.splitlines() if s.startswith("REPORT")][-1]
    return json.loads(line[len("REPORT"):])


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    root = tmp_path_factory.mktemp("wrapped")
    keras.utils.clear_session()
    models, expected, modules = _saved_models(), {}, {}
    for i, (name, (model, x)) in enumerate(models.items()):
        randomize_weights(model, seed=i, scale=0.4)
        np.savez(root / f"{name}_x.npz",
                 **{f"x{j}": a for j, a in enumerate(x)})
        expected[name] = model.predict(x[0] if len(x) == 1 else x,
                                       verbose=0)
        model.save(root / f"{name}.keras")
        model.export(root / f"{name}_export", verbose=False)
        modules[name] = sorted({type(layer).__module__ for layer in
                                model._flatten_layers(include_self=False)})
    return root, list(models), expected, modules


def test_wrapped_models_reload_in_fresh_process(saved):
    root, names, expected, modules = saved
    report = _report(KERAS_LOAD, root, names)
    for name in names:
        # a fresh process may round differently (oneDNN): ~1e-8
        assert_close(np.float32(report[name]["y"]), expected[name],
                     atol=1e-6, what=name)
        # every layer and cell comes back as the same class's module
        assert report[name]["modules"] == modules[name], name
        assert any(m.startswith("keras_rnn_plus") for m in modules[name])


def test_wrapped_models_export_served_without_keras_rnn_plus(saved):
    root, names, expected, _ = saved
    report = _report(SERVE, root, names)
    for name in names:
        assert_close(np.float32(report[name]), expected[name], what=name)
