"""Configs, `.keras` files, `.weights.h5` files and `set_weights`.

`krp.LSTM` claims to be a drop-in for `keras.layers.LSTM`: its config must
hold every argument (Keras's included), it must survive `from_config` and a
`.keras` round trip through a fresh interpreter (safe mode), and weights
must move both ways between it and `keras.layers.LSTM`.
"""

import inspect
import json

import keras
import numpy as np
import pytest
from testing import (
    assert_close,
    copied_pair,
    random_inputs,
    randomize_weights,
    run_python,
)

import keras_rnn_plus as krp
from keras_rnn_plus.activations import keras2_hard_sigmoid

BATCH, STEPS, FEATURES, UNITS = 3, 5, 4, 6

# Config keys that are not constructor parameters of the layer but are
# forwarded through **kwargs (base layer and keras.layers.RNN arguments).
BASE_KEYS = {"name", "trainable", "dtype", "zero_output_for_mask"}

RELOAD_ATOL = 1e-6  # saved and reloaded predictions (float32, values ~1)


def _params(cls):
    return {
        name: p
        for name, p in inspect.signature(cls).parameters.items()
        if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
    }


def non_default_kwargs():
    """Every constructor argument of `krp.LSTM` but `units`, most with a
    non-default value (`use_bias=True` keeps the bias arguments in play,
    `stateful=False` allows any batch size)."""
    return dict(
        activation="relu",
        recurrent_activation="keras2_hard_sigmoid",
        use_bias=True,
        kernel_initializer=keras.initializers.GlorotNormal(seed=11),
        recurrent_initializer=keras.initializers.Orthogonal(gain=0.9, seed=12),
        bias_initializer=keras.initializers.RandomUniform(-0.1, 0.1, seed=13),
        unit_forget_bias=False,
        kernel_regularizer=keras.regularizers.L1L2(l1=0.01, l2=0.02),
        recurrent_regularizer=keras.regularizers.L2(0.03),
        bias_regularizer=keras.regularizers.L1(0.04),
        activity_regularizer=keras.regularizers.L1L2(l1=0.0, l2=0.05),
        kernel_constraint=keras.constraints.MaxNorm(2.0),
        recurrent_constraint=keras.constraints.UnitNorm(axis=0),
        bias_constraint=keras.constraints.NonNeg(),
        dropout=0.1,
        recurrent_dropout=0.2,
        implementation=1,
        return_sequences=True,
        return_state=True,
        go_backwards=True,
        stateful=False,
        unroll=True,
        seed=1234,
        use_cudnn=False,
        zero_output_for_mask=True,
        name="my_lstm",
    )


# -- get_config / from_config -------------------------------------------


def test_signature_covers_keras_lstm_with_same_defaults():
    ours, theirs = _params(krp.LSTM), _params(keras.layers.LSTM)
    assert set(theirs) <= set(ours), set(theirs) - set(ours)
    for name, p in theirs.items():
        assert ours[name].default == p.default, name
    assert ours["implementation"].default == 2


def test_cell_signature_covers_keras_lstm_cell():
    ours, theirs = _params(krp.LSTMCell), _params(keras.layers.LSTMCell)
    assert set(theirs) <= set(ours), set(theirs) - set(ours)
    for name, p in theirs.items():
        assert ours[name].default == p.default, name
    config = krp.LSTMCell(3).get_config()
    assert set(ours) <= set(config), set(ours) - set(config)


def test_config_holds_every_argument():
    keys = set(krp.LSTM(UNITS).get_config())
    expected = set(_params(krp.LSTM)) | set(_params(keras.layers.LSTM))
    assert expected <= keys, expected - keys
    # Everything Keras's own config holds is in ours too.
    keras_keys = set(keras.layers.LSTM(UNITS).get_config())
    assert keras_keys <= keys, keras_keys - keys
    unexplained = keys - expected - BASE_KEYS
    assert not unexplained, unexplained


def test_config_values_of_non_default_arguments():
    kwargs = non_default_kwargs()
    config = krp.LSTM(UNITS, **kwargs).get_config()
    ser = keras.saving.serialize_keras_object
    for key, value in kwargs.items():
        if key == "recurrent_activation":
            continue
        if isinstance(value, (bool, int, float, str)):
            assert config[key] == value, key
        else:
            assert config[key] == ser(value), key
    assert config["units"] == UNITS
    # The package's activation serializes by name and comes back as the
    # function.
    again = krp.LSTM(UNITS, recurrent_activation=config["recurrent_activation"])
    assert again.recurrent_activation is keras2_hard_sigmoid
    # The config is plain JSON.
    json.dumps(config)


# Round-trip cases: the non-default arguments above, then each LSTM variant
# (keyword-only arguments) with non-default values.
ROUND_TRIPS = {
    "all-non-default": dict(),
    "implementation-1": dict(
        implementation=1, recurrent_dropout=0.0, dropout=0.0
    ),
    "implementation-2": dict(
        implementation=2, return_sequences=False, unroll=False
    ),
    "peepholes-clip-projection-layer-norm": dict(
        use_peepholes=True,
        forget_bias=1.0,
        cell_clip=3.0,
        num_proj=3,
        proj_clip=2.0,
        layer_norm=True,
    ),
    "cifg": dict(coupled_input_forget=True, use_peepholes=True),
    "no-forget-gate": dict(use_forget_gate=False, implementation=2),
}


def test_round_trips_cover_every_argument():
    """Each constructor argument has a non-default value in some case."""
    covered = set(non_default_kwargs())
    for overrides in ROUND_TRIPS.values():
        covered |= set(overrides)
    missing = set(_params(krp.LSTM)) - covered - {"units"}
    assert not missing, f"add non-default values for {missing}"


@pytest.mark.parametrize(
    "overrides", list(ROUND_TRIPS.values()), ids=list(ROUND_TRIPS)
)
def test_from_config_round_trip(overrides):
    kwargs = {**non_default_kwargs(), **overrides}
    x = random_inputs((BATCH, STEPS, FEATURES))
    layer = krp.LSTM(UNITS, **kwargs)
    layer(x)
    randomize_weights(layer)
    config = layer.get_config()

    clone = krp.LSTM.from_config(json.loads(json.dumps(config)))
    assert type(clone) is krp.LSTM
    assert clone.get_config() == config
    clone(x)
    assert [w.path for w in clone.weights] == [
        w.path.replace(layer.name, clone.name, 1) for w in layer.weights
    ]
    clone.set_weights(layer.get_weights())
    # Inference (no dropout): identical numbers.
    assert_close(clone(x), layer(x), atol=0, rtol=0)
    # Training with seeded dropout: a fresh layer from the same config
    # draws the same masks as a fresh original.
    a = krp.LSTM(UNITS, **kwargs)
    b = krp.LSTM.from_config(config)
    a(x), b(x)
    b.set_weights(a.get_weights())
    assert_close(b(x, training=True), a(x, training=True), atol=0, rtol=0)


def test_keras_config_loads_into_ours_and_back():
    """A `keras.layers.LSTM` config is a valid `krp.LSTM` config (and the
    reverse for the arguments Keras knows), with the same outputs."""
    x = random_inputs((BATCH, STEPS, FEATURES))
    kwargs = dict(
        activation="relu",
        recurrent_activation="hard_sigmoid",
        unit_forget_bias=False,
        kernel_regularizer=keras.regularizers.L1L2(0.01, 0.02),
        kernel_constraint=keras.constraints.MaxNorm(2.0),
        kernel_initializer=keras.initializers.GlorotUniform(seed=3),
        go_backwards=True,
        return_sequences=True,
        return_state=True,
        zero_output_for_mask=True,
    )
    reference = keras.layers.LSTM(UNITS, **kwargs)
    ours = krp.LSTM.from_config(reference.get_config())
    copied_pair(reference, ours, x)
    randomize_weights(reference)
    ours.set_weights(reference.get_weights())
    assert_close(ours(x), reference(x))
    ours_config = ours.get_config()
    for key, value in reference.get_config().items():
        assert ours_config[key] == value, key

    keras_keys = set(reference.get_config())
    back_config = {k: v for k, v in ours_config.items() if k in keras_keys}
    back = keras.layers.LSTM.from_config(back_config)
    back(x)
    back.set_weights(ours.get_weights())
    assert_close(back(x), ours(x))


@pytest.mark.parametrize("ours_cls, keras_cls", [
    (krp.LSTM, keras.layers.LSTM), (krp.GRU, keras.layers.GRU)])
@pytest.mark.parametrize("rates", [(1.5, 0.0), (0.0, 3.0), (1.0, 0.4)])
def test_keras_config_with_rates_clamped_to_one(ours_cls, keras_cls, rates):
    """Keras clamps dropout rates into [0, 1] and writes the clamped value
    to its config; ours loads it and computes what Keras computes in
    training (a rate of 1 drops nothing in Keras's loop)."""
    x = random_inputs((BATCH, STEPS, FEATURES))
    reference = keras_cls(UNITS, dropout=rates[0], recurrent_dropout=rates[1],
                          seed=5, return_sequences=True)
    ours = ours_cls.from_config(reference.get_config())
    assert (ours.dropout, ours.recurrent_dropout) == (
        reference.dropout, reference.recurrent_dropout)
    copied_pair(reference, ours, x)
    assert_close(ours(x, training=True), reference(x, training=True),
                 atol=0, rtol=0)


# -- .keras files in a fresh interpreter ---------------------------------


def _sequential():
    return keras.Sequential(
        [
            keras.Input((STEPS, FEATURES)),
            krp.LSTM(UNITS, return_sequences=True),
            krp.LSTM(UNITS, go_backwards=True, implementation=1),
            keras.layers.Dense(2),
        ],
        name="seq",
    )


def _functional():
    inputs = keras.Input((None, FEATURES))
    masked = keras.layers.Masking(0.0)(inputs)
    seq, h, c = krp.LSTM(
        UNITS,
        return_sequences=True,
        return_state=True,
        zero_output_for_mask=True,
    )(masked)
    last = krp.LSTM(UNITS, name="second")(seq, initial_state=[h, c])
    out = keras.layers.Dense(1)(keras.layers.Concatenate()([last, c]))
    return keras.Model(inputs, out, name="func")


def _keras2_style():
    """Keras 2 activation, regularizers, constraints, seeded initializers,
    and a compiled-and-trained model (optimizer state is saved too)."""
    model = keras.Sequential(
        [
            keras.Input((STEPS, FEATURES)),
            krp.LSTM(
                UNITS,
                recurrent_activation="keras2_hard_sigmoid",
                implementation=1,
                kernel_regularizer=keras.regularizers.L1L2(0.01, 0.02),
                recurrent_regularizer=keras.regularizers.L2(0.01),
                bias_regularizer=keras.regularizers.L1(0.01),
                activity_regularizer=keras.regularizers.L2(0.001),
                kernel_constraint=keras.constraints.MaxNorm(3.0),
                kernel_initializer=keras.initializers.HeNormal(seed=5),
                dropout=0.1,
                recurrent_dropout=0.1,
                seed=7,
            ),
            keras.layers.Dense(3),
        ],
        name="keras2",
    )
    model.compile(optimizer="adam", loss="mse")
    x = random_inputs((8, STEPS, FEATURES), seed=3)
    model.fit(x, np.ones((8, 3), "float32"), epochs=1, verbose=0)
    return model


def _function_activation():
    """The activation given as the function object, not by name."""
    return keras.Sequential(
        [
            keras.Input((STEPS, FEATURES)),
            krp.LSTM(
                UNITS,
                activation="relu",
                recurrent_activation=keras2_hard_sigmoid,
                unroll=True,
                use_bias=False,
            ),
        ],
        name="fn",
    )


def _variants():
    """Layers with the LSTM variants' extra weights and arguments."""
    return keras.Sequential(
        [
            keras.Input((STEPS, FEATURES)),
            krp.PeepholeLSTM(UNITS, return_sequences=True, cell_clip=2.0),
            krp.LSTM(
                UNITS,
                layer_norm=True,
                num_proj=3,
                proj_clip=1.5,
                coupled_input_forget=True,
            ),
        ],
        name="variants",
    )


BUILDERS = {
    "sequential": _sequential,
    "functional": _functional,
    "keras2_style": _keras2_style,
    "function_activation": _function_activation,
    "variants": _variants,
}

LOAD_CODE = """
import json, sys
import numpy as np
import keras
import keras_rnn_plus

root = sys.argv[1] if len(sys.argv) > 1 else {root!r}
names = {names!r}
report = {{}}
for name in names:
    model = keras.models.load_model(f"{{root}}/{{name}}.keras")
    x = np.load(f"{{root}}/{{name}}_x.npy")
    expected = np.load(f"{{root}}/{{name}}_y.npy")
    got = model.predict(x, verbose=0)
    lstms = [l for l in model.layers if "LSTM" in type(l).__name__]
    report[name] = dict(
        max_diff=float(np.max(np.abs(got - expected))),
        classes=[type(l).__module__ + "." + type(l).__name__
                 for l in lstms],
        configs=[l.get_config() for l in lstms],
        losses=len(model.losses),
        optimizer_iterations=(
            int(model.optimizer.iterations.numpy())
            if getattr(model, "optimizer", None) else None),
    )
print("REPORT" + json.dumps(report))
"""


@pytest.fixture(scope="module")
def loaded_in_fresh_process(tmp_path_factory):
    """Save every model (and its predictions) here, load them all in one
    fresh interpreter; return (originals, that interpreter's report)."""
    root = tmp_path_factory.mktemp("keras_files")
    originals = {}
    for name, build in BUILDERS.items():
        keras.utils.clear_session()
        model = build()
        for layer in model.layers:
            if isinstance(layer, krp.LSTM):
                randomize_weights(layer, scale=0.4)
        x = random_inputs((BATCH, STEPS, FEATURES), seed=9)
        if name == "functional":
            x[0, 3:] = 0.0  # masked tail
            x[1, 1:] = 0.0
        y = model.predict(x, verbose=0)
        np.save(root / f"{name}_x.npy", x)
        np.save(root / f"{name}_y.npy", y)
        model.save(root / f"{name}.keras")
        lstms = [ly for ly in model.layers if isinstance(ly, krp.LSTM)]
        originals[name] = dict(
            classes=[
                f"{type(ly).__module__}.{type(ly).__name__}" for ly in lstms
            ],
            configs=[json.loads(json.dumps(ly.get_config())) for ly in lstms],
            losses=len(model.losses),
            iterations=(
                int(model.optimizer.iterations.numpy())
                if getattr(model, "optimizer", None)
                else None
            ),
        )
    out = run_python(LOAD_CODE.format(root=str(root), names=list(BUILDERS)))
    line = [s for s in out.splitlines() if s.startswith("REPORT")][-1]
    return originals, json.loads(line[len("REPORT") :])


@pytest.mark.parametrize("name", list(BUILDERS))
def test_keras_file_loads_in_fresh_process(name, loaded_in_fresh_process):
    originals, report = loaded_in_fresh_process
    got, original = report[name], originals[name]
    # Identical up to float32 rounding: a fresh process may order a few
    # floating-point sums differently (differences of ~1e-8 seen).
    assert got["max_diff"] <= RELOAD_ATOL, got["max_diff"]
    assert got["classes"] == original["classes"]
    assert all(c.startswith("keras_rnn_plus.") for c in got["classes"])
    assert got["configs"] == original["configs"]
    assert got["losses"] == original["losses"]
    assert got["optimizer_iterations"] == original["iterations"]


# -- .weights.h5 files between keras.layers.LSTM and krp.LSTM -------------


def _weights_model(lstm):
    """Two stacked LSTMs (one backwards, one with the per-gate route where
    the class knows it) and a head; `lstm` is the LSTM class."""
    extra = {"implementation": 1} if lstm is krp.LSTM else {}
    return keras.Sequential(
        [
            keras.Input((STEPS, FEATURES)),
            lstm(UNITS, return_sequences=True, go_backwards=True),
            lstm(UNITS, unit_forget_bias=False, **extra),
            keras.layers.Dense(2),
        ]
    )


@pytest.mark.parametrize(
    "source, target",
    [(keras.layers.LSTM, krp.LSTM), (krp.LSTM, keras.layers.LSTM)],
    ids=["keras-to-ours", "ours-to-keras"],
)
def test_weights_h5_between_keras_and_ours(tmp_path, source, target):
    x = random_inputs((BATCH, STEPS, FEATURES), seed=4)
    src = _weights_model(source)
    for layer in src.layers:
        randomize_weights(layer, seed=len(layer.name), scale=0.4)
    expected = src.predict(x, verbose=0)
    path = tmp_path / "model.weights.h5"
    src.save_weights(path)

    dst = _weights_model(target)
    before = dst.predict(x, verbose=0)
    assert np.max(np.abs(before - expected)) > 1e-3  # not trivially equal
    dst.load_weights(path)
    assert_close(dst.predict(x, verbose=0), expected, atol=1e-5)
    for a, b in zip(dst.get_weights(), src.get_weights()):
        np.testing.assert_array_equal(a, b)


# -- set_weights ---------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(),
        dict(return_sequences=True, return_state=True, go_backwards=True),
        dict(use_bias=False),
    ],
    ids=["default", "seq-state-backwards", "no-bias"],
)
def test_set_weights_both_ways(kwargs):
    x = random_inputs((BATCH, STEPS, FEATURES), seed=5)
    reference, ours = (
        keras.layers.LSTM(UNITS, **kwargs),
        krp.LSTM(UNITS, **kwargs),
    )
    reference(x), ours(x)
    assert [tuple(w.shape) for w in ours.weights] == [
        tuple(w.shape) for w in reference.weights
    ]
    assert [w.path.split("/")[-1] for w in ours.weights] == [
        w.path.split("/")[-1] for w in reference.weights
    ]

    # Keras -> ours.
    randomize_weights(reference, seed=6)
    ours.set_weights(reference.get_weights())
    assert_close(ours(x), reference(x))

    # Ours -> Keras.
    randomize_weights(ours, seed=7)
    reference.set_weights(ours.get_weights())
    assert_close(reference(x), ours(x))
    for a, b in zip(reference.get_weights(), ours.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_set_weights_rejects_wrong_shapes():
    x = random_inputs((BATCH, STEPS, FEATURES))
    reference, ours = keras.layers.LSTM(UNITS + 1), krp.LSTM(UNITS)
    reference(x), ours(x)
    with pytest.raises(ValueError):
        ours.set_weights(reference.get_weights())


@pytest.mark.parametrize("ours_cls, keras_cls", [
    (krp.LSTM, keras.layers.LSTM), (krp.GRU, keras.layers.GRU)])
def test_layer_attributes_are_keras_layers(ours_cls, keras_cls):
    """Every setting Keras's layer exposes as an attribute, ours exposes
    with the same value, and nothing of the other layer kind."""
    ours, theirs = ours_cls(3, dropout=0.25), keras_cls(3, dropout=0.25)
    names = [n for n, v in vars(keras_cls).items()
             if isinstance(v, property)]
    assert "units" in names
    serialize = keras.saving.serialize_keras_object
    for name in names:
        assert serialize(getattr(ours, name)) == serialize(
            getattr(theirs, name)), name
    other = "reset_after" if ours_cls is krp.LSTM else "unit_forget_bias"
    assert not hasattr(ours, other)


def test_lstm_variant_settings_are_layer_attributes():
    layer = krp.LSTM(3, use_peepholes=True, forget_bias=0.5, cell_clip=2.0,
                     num_proj=2, proj_clip=1.0, layer_norm=True)
    assert (layer.use_peepholes, layer.forget_bias, layer.cell_clip,
            layer.num_proj, layer.proj_clip, layer.use_forget_gate,
            layer.coupled_input_forget, layer.layer_norm) == (
        True, 0.5, 2.0, 2, 1.0, True, False, True)
