"""LSTM variants against independent references: a NumPy LSTM written from
the papers, Keras 2's PeepholeLSTMCell, TF1's LSTMCell, PyTorch's
nn.LSTM(proj_size=...), ONNX's LSTM op in ONNX Runtime (peepholes, CIFG),
and reductions to keras.layers.LSTM."""

import inspect
import itertools
import json
import threading

import keras
import numpy as np
import pytest
import reference
import tensorflow as tf
from testing import (
    assert_close,
    random_inputs,
    randomize_weights,
    run_python,
    run_tf1_cell,
)

import keras_rnn_plus as krp
from keras_rnn_plus.porting import (
    from_tf1_lstm_cell,
    from_torch_lstm,
    load_keras2_model,
)

UNITS = 4
VARIANTS = {
    "peepholes": dict(use_peepholes=True),
    "forget_bias": dict(forget_bias=1.0),
    "cell_clip": dict(cell_clip=0.3),
    "projection": dict(num_proj=3),
    "proj_clip": dict(num_proj=3, proj_clip=0.1),
    "no_forget_gate": dict(use_forget_gate=False),
    "cifg": dict(coupled_input_forget=True),
    "layer_norm": dict(layer_norm=True),
    "tf1_all": dict(use_peepholes=True, cell_clip=0.3, num_proj=3,
                    proj_clip=0.1, forget_bias=1.0),
    "cifg_peepholes": dict(coupled_input_forget=True, use_peepholes=True),
    "layer_norm_peepholes_proj": dict(layer_norm=True, use_peepholes=True,
                                      num_proj=3),
}
REF_NAMES = dict(use_peepholes="peepholes", forget_bias="forget_bias",
                 cell_clip="cell_clip", proj_clip="proj_clip",
                 use_forget_gate="forget_gate", coupled_input_forget="cifg",
                 layer_norm="layer_norm_")


def ref_kwargs(variant):
    return {REF_NAMES[k]: v for k, v in variant.items() if k in REF_NAMES}


def weights_by_name(layer):
    return {w.name: np.asarray(w.numpy()) for w in layer.weights
            if w.name != "rnn_state"}


def built(variant, x, seed=1, **kwargs):
    """Our layer with every weight random (gammas around 1)."""
    layer = krp.LSTM(UNITS, **variant, **kwargs)
    layer(x)
    rs = np.random.RandomState(seed)
    layer.set_weights([
        (1.0 if "gamma" in w.name else 0.0)
        + 0.5 * rs.standard_normal(w.shape).astype("float32")
        for w in layer.weights if w.name != "rnn_state"
    ])
    return layer


# -- the NumPy reference ------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("implementation", [1, 2])
@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_variant_matches_numpy_reference(name, implementation, seed):
    variant = VARIANTS[name]
    x = random_inputs((3, 6, 5), seed)
    layer = built(variant, x, seed=seed + 10, return_sequences=True,
                  return_state=True, implementation=implementation)
    want = reference.lstm(x, weights_by_name(layer), **ref_kwargs(variant))
    # Layer norm divides by a standard deviation, which magnifies float32
    # rounding; the float64 check below shows the math is exact.
    atol = 3e-5 if variant.get("layer_norm") else 1e-5
    assert_close(layer(x), want, atol=atol)
    exact = krp.LSTM.from_config({**layer.get_config(), "dtype": "float64"})
    exact(x)
    exact.set_weights(layer.get_weights())
    assert_close(exact(x.astype("float64")), want, atol=1e-10)


def _dropout_masks(rate, count, shape, seed):
    """`count` Keras-style dropout masks: 0, or 1 / (1 - rate) kept."""
    rs = np.random.RandomState(seed)
    return [((rs.uniform(size=shape) > rate) / (1.0 - rate)).astype("float32")
            for _ in range(count)]


@pytest.mark.parametrize("dropout, recurrent_dropout, implementation", [
    (0.3, 0.0, 2), (0.3, 0.0, 1), (0.3, 0.4, 2), (0.0, 0.4, 1),
])
@pytest.mark.parametrize("name", ["tf1_all", "cifg_peepholes",
                                  "no_forget_gate",
                                  "layer_norm_peepholes_proj"])
def test_variant_training_with_dropout_matches_numpy_reference(
        monkeypatch, name, dropout, recurrent_dropout, implementation):
    """In training, the variants drop the inputs and `h(t-1)` as Keras's
    LSTM does (one mask for the fused product; one per gate in the
    per-gate route, which recurrent dropout forces), the same masks at
    every step: given the masks, the NumPy reference's numbers."""
    variant = VARIANTS[name]
    x = random_inputs((3, 6, 5))
    layer = built(variant, x, return_sequences=True, return_state=True,
                  dropout=dropout, recurrent_dropout=recurrent_dropout,
                  implementation=implementation)
    cell = layer.cell
    gates, h_dim = cell.num_gates, variant.get("num_proj", UNITS)
    per_gate = implementation == 1 or recurrent_dropout > 0
    inputs = _dropout_masks(dropout, gates if per_gate else 1, (3, 5), 1)
    recurrent = _dropout_masks(recurrent_dropout, gates, (3, h_dim), 2)
    monkeypatch.setattr(cell, "get_dropout_mask",
                        lambda _: inputs if per_gate else inputs[0])
    monkeypatch.setattr(cell, "get_recurrent_dropout_mask",
                        lambda _: recurrent)
    want = reference.lstm(
        x, weights_by_name(layer), **ref_kwargs(variant),
        input_masks=(inputs if per_gate else inputs * gates)
        if dropout else None,
        recurrent_masks=recurrent if recurrent_dropout else None,
    )
    got = layer(x, training=True)
    atol = 3e-5 if variant.get("layer_norm") else 1e-5
    assert_close(got, want, atol=atol)
    # Not vacuous: without dropout, other numbers.
    assert np.abs(np.asarray(layer(x)[0]) - want[0]).max() > 1e-2


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_variant_with_mask_go_backwards_and_initial_state(name):
    variant = VARIANTS[name]
    x = random_inputs((4, 6, 5))
    mask = np.ones((4, 6), bool)
    mask[1, 4:] = False
    mask[2, :3] = False
    mask[3] = False
    h_dim = variant.get("num_proj", UNITS)
    h0, c0 = random_inputs((4, h_dim), 3), random_inputs((4, UNITS), 4)
    layer = built(variant, x, return_sequences=True, return_state=True,
                  go_backwards=True)
    got = layer(x, mask=mask, initial_state=[h0, c0])
    want = reference.lstm(x[:, ::-1], weights_by_name(layer),
                          mask=mask[:, ::-1], h0=h0, c0=c0,
                          **ref_kwargs(variant))
    assert_close(got, want)


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_variant_stateful_carries_states_across_batches(name):
    variant = VARIANTS[name]
    x = random_inputs((2, 8, 5))
    layer = built(variant, x[:, :4], stateful=True, return_sequences=True)
    layer.reset_state()
    first, second = layer(x[:, :4]), layer(x[:, 4:])
    want, _, _ = reference.lstm(x, weights_by_name(layer),
                                **ref_kwargs(variant))
    assert_close(np.concatenate([first, second], 1), want)
    layer.reset_state()
    assert_close(layer(x[:, :4]), want[:, :4])


def test_one_layer_called_and_traced_from_threads_at_once():
    """A multi-threaded server calls one layer from several threads: each
    call sees the layer's variables, whatever the others are doing (the
    loop's weights read once, broadcast to the batch, are the calling
    thread's own), and a function traced meanwhile reads the variables,
    not a tensor of another thread's call."""
    variant = dict(use_peepholes=True, layer_norm=True)
    xs = [random_inputs((3, 6, 5), 1), random_inputs((5, 6, 5), 2)]
    layer = built(variant, xs[0])
    weights = weights_by_name(layer)
    want = [reference.lstm(x, weights, **ref_kwargs(variant))[1] for x in xs]
    failures, traced = [], []

    def call(k):
        for _ in range(15):
            try:
                assert_close(layer(xs[k]), want[k])
            except Exception as e:  # noqa: BLE001 (reported below)
                failures.append(f"{type(e).__name__}: {e}"[:300])

    def trace():
        for _ in range(6):
            f = tf.function(lambda x: layer(x))
            f.get_concrete_function(tf.TensorSpec((None, None, 5)))
            traced.append(f)

    threads = [threading.Thread(target=f, args=a)
               for f, a in ((call, (0,)), (call, (1,)), (trace, ()))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures[:3]
    for w in layer.weights:
        w.assign(w * 0.5)
    want = reference.lstm(xs[1], weights_by_name(layer),
                          **ref_kwargs(variant))[1]
    for f in traced:
        assert_close(f(xs[1]), want, what="a function traced meanwhile")


@pytest.mark.parametrize("name", ["tf1_all", "cifg", "layer_norm",
                                  "no_forget_gate"])
def test_variant_inside_bidirectional(name):
    variant = VARIANTS[name]
    x = random_inputs((3, 5, 4))
    bi = keras.layers.Bidirectional(
        krp.LSTM(UNITS, return_sequences=True, **variant))
    bi(x)
    rs = np.random.RandomState(0)
    bi.set_weights([(1.0 if "gamma" in w.path else 0.0)
                    + 0.5 * rs.standard_normal(w.shape) for w in bi.weights])
    fwd, _, _ = reference.lstm(x, weights_by_name(bi.forward_layer),
                               **ref_kwargs(variant))
    bwd, _, _ = reference.lstm(x[:, ::-1], weights_by_name(bi.backward_layer),
                               **ref_kwargs(variant))
    assert_close(bi(x), np.concatenate([fwd, bwd[:, ::-1]], -1))


# -- external references ------------------------------------------------------
def _keras2():
    pytest.importorskip("tensorflow.python.keras.layers.recurrent")
    from tensorflow.python.keras.layers import recurrent

    return recurrent


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("kwargs", [
    {}, dict(recurrent_activation="sigmoid", implementation=2),
    dict(use_bias=False, unit_forget_bias=False),
])
def test_peephole_cell_equals_keras2_peephole_cell(kwargs):
    recurrent = _keras2()
    x = random_inputs((3, 6, 5))
    theirs = recurrent.RNN(recurrent.PeepholeLSTMCell(UNITS, **kwargs),
                           return_sequences=True, return_state=True)
    theirs(x)
    rs = np.random.RandomState(0)
    weights = [0.5 * rs.standard_normal(w.shape).astype("float32")
               for w in theirs.get_weights()]
    theirs.set_weights(weights)
    ours_kwargs = {**kwargs}
    if "recurrent_activation" not in kwargs:  # Keras 2's default
        assert krp.PeepholeLSTMCell(2).recurrent_activation is \
            krp.activations.keras2_hard_sigmoid
    for ours in (
        keras.layers.RNN(krp.PeepholeLSTMCell(UNITS, **ours_kwargs),
                         return_sequences=True, return_state=True),
        krp.PeepholeLSTM(UNITS, return_sequences=True, return_state=True,
                         **ours_kwargs),
    ):
        ours(x)
        ours.set_weights(weights)
        assert [w.name for w in ours.weights] == [
            w.name.split("/")[-1].split(":")[0] for w in theirs.weights]
        assert_close(ours(x), theirs(x))


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_keras2_peephole_model_file_loads(tmp_path, monkeypatch):
    """A whole Keras 2 `.h5` model with `RNN(PeepholeLSTMCell)` gives its
    numbers loaded by `load_keras2_model` (Keras 3's `load_model` rejects
    its `RNN` config), and rebuilt with `krp.PeepholeLSTM` and given the
    file with `load_weights`."""
    recurrent = _keras2()
    import tensorflow.python.keras as keras2

    # The bundled Keras 2 writes its version into the file; it has none.
    monkeypatch.setattr(keras2, "__version__", "2.15.0", raising=False)
    x = random_inputs((3, 6, 5))
    inputs = keras2.Input((6, 5))
    hidden = recurrent.RNN(recurrent.PeepholeLSTMCell(UNITS),
                           return_sequences=True)(inputs)
    theirs = keras2.Model(inputs, keras2.layers.Dense(2)(hidden))
    rs = np.random.RandomState(3)
    theirs.set_weights([0.5 * rs.standard_normal(w.shape)
                        for w in theirs.get_weights()])
    path = str(tmp_path / "keras2_peephole_model.h5")
    theirs.save(path)
    ours = keras.Sequential([
        keras.Input((6, 5)), krp.PeepholeLSTM(UNITS, return_sequences=True),
        keras.layers.Dense(2)])
    ours.load_weights(path)
    assert_close(ours.predict(x, verbose=0), theirs(x).numpy())
    loaded = load_keras2_model(path)
    assert isinstance(loaded.layers[1].cell, krp.PeepholeLSTMCell)
    assert_close(loaded.predict(x, verbose=0), theirs(x).numpy())


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_peephole_classes_take_keras2_positional_arguments():
    """Keras 2's `PeepholeLSTMCell(units, activation, recurrent_activation,
    use_bias, ...)`, positionally, and the same call on ours."""
    recurrent = _keras2()
    args = (UNITS, "relu", "sigmoid", False)
    x = random_inputs((3, 6, 5))
    theirs = recurrent.RNN(recurrent.PeepholeLSTMCell(*args))
    theirs(x)
    for ours in (keras.layers.RNN(krp.PeepholeLSTMCell(*args)),
                 krp.PeepholeLSTM(*args)):
        ours(x)
        assert ours.cell.use_peepholes and ours.cell.bias is None
        ours.set_weights(theirs.get_weights())
        assert_close(ours(x), theirs(x))


@pytest.mark.parametrize("peephole_cls, plain_cls", [
    (krp.PeepholeLSTM, krp.LSTM), (krp.PeepholeLSTMCell, krp.LSTMCell)])
def test_peephole_signature_shows_keras2_defaults(peephole_cls, plain_cls):
    """`inspect.signature` (and so `help`) lists every argument of the
    plain class, in its order (for the cell, Keras 2's positional order),
    with the defaults of Keras 2's `PeepholeLSTMCell` where Keras 2 had
    the argument."""
    recurrent = _keras2()
    ours = inspect.signature(peephole_cls).parameters
    plain = inspect.signature(plain_cls).parameters
    assert list(ours) == list(plain)
    keras2 = inspect.signature(recurrent.PeepholeLSTMCell).parameters
    keras2_names = [n for n, p in keras2.items()
                    if p.kind == p.POSITIONAL_OR_KEYWORD]
    if peephole_cls is krp.PeepholeLSTMCell:  # Keras 2 had no layer
        assert keras2_names == list(ours)[:len(keras2_names)]
    for name in keras2_names:
        expected = keras2[name].default
        if name == "recurrent_activation":
            assert expected == "hard_sigmoid"
            expected = "keras2_hard_sigmoid"
        assert ours[name].default == expected, name
    assert ours["implementation"].default == 1
    assert recurrent.PeepholeLSTMCell(2).implementation == 1
    assert ours["use_peepholes"].default is True
    class Subclass(peephole_cls):  # a subclass's own `__init__` shows
        def __init__(self, units, extra=None, **kwargs):
            super().__init__(units, **kwargs)

    assert list(inspect.signature(Subclass).parameters) == [
        "units", "extra", "kwargs"]
    # The signature shows what the class does.
    config = peephole_cls(2).get_config()
    for name in ("activation", "recurrent_activation", "use_bias",
                 "unit_forget_bias", "dropout", "implementation",
                 "use_peepholes", "forget_bias", "cell_clip"):
        assert config[name] == ours[name].default, name


@pytest.mark.parametrize("peephole_cls, plain_cls", [
    (krp.PeepholeLSTM, krp.LSTM), (krp.PeepholeLSTMCell, krp.LSTMCell)])
def test_peephole_classes_take_every_argument_by_position(peephole_cls,
                                                          plain_cls):
    """Past Keras 2's arguments too: `implementation` and what follows it
    land where the plain class's signature puts them."""
    parameters = inspect.signature(plain_cls).parameters
    names = [n for n, p in parameters.items()
             if p.kind == p.POSITIONAL_OR_KEYWORD]
    given = {"units": 3, "dropout": 0.25, "seed": 7, "implementation": 2}
    if plain_cls is krp.LSTM:
        given.update(return_sequences=True, go_backwards=True)
    assert set(given) <= set(names)
    config = peephole_cls(
        *[given.get(n, parameters[n].default) for n in names]).get_config()
    for name, value in given.items():
        assert config[name] == value, name
    assert config["use_peepholes"] is True

TF1_CONFIGS = [
    dict(use_peepholes=True),
    dict(cell_clip=0.3, forget_bias=1.0),
    dict(num_proj=3),
    dict(num_proj=3, proj_clip=0.1, use_peepholes=True, cell_clip=0.5),
    dict(use_peepholes=True, forget_bias=0.5, num_proj=2, proj_clip=0.3),
]


@pytest.mark.parametrize("config", TF1_CONFIGS)
def test_matches_tf1_lstm_cell(config):
    legacy = pytest.importorskip("tf_keras.src.layers.rnn.legacy_cells")
    config = {"forget_bias": 0.0, **config}
    x = random_inputs((3, 6, 5))
    cell = legacy.LSTMCell(UNITS, **config)
    h_dim = config.get("num_proj") or UNITS
    state = (tf.zeros((3, UNITS)), tf.zeros((3, h_dim)))
    outputs, state, named = run_tf1_cell(cell, x, state, seed=2, scale=0.5)
    ours = krp.LSTM(UNITS, return_sequences=True, return_state=True,
                    **config)
    ours(x)
    ours.set_weights(from_tf1_lstm_cell(
        named["kernel"], named["bias"], w_i_diag=named.get("w_i_diag"),
        w_f_diag=named.get("w_f_diag"), w_o_diag=named.get("w_o_diag"),
        projection_kernel=named.get("projection/kernel")))
    seq, h, c = ours(x)
    assert_close([seq, h, c], [outputs, state.h, state.c])


@pytest.mark.parametrize("proj_size, bias, parameters", [
    (0, True, False), (2, True, False), (3, True, True), (2, False, True)])
def test_matches_torch_lstm_with_projection(proj_size, bias, parameters):
    """PyTorch's weights as numpy arrays or as its parameters themselves."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(proj_size)
    x = random_inputs((3, 7, 5))
    theirs = torch.nn.LSTM(5, UNITS, batch_first=True, proj_size=proj_size,
                           bias=bias)
    with torch.no_grad():
        for p in theirs.parameters():
            p.uniform_(-0.6, 0.6)
        seq, (h, c) = theirs(torch.from_numpy(x))
    p = {k: v if parameters else v.detach().numpy()
         for k, v in theirs.named_parameters()}
    ours = krp.LSTM(UNITS, num_proj=proj_size or None, use_bias=bias,
                    return_sequences=True, return_state=True)
    ours(x)
    ours.set_weights(from_torch_lstm(
        p["weight_ih_l0"], p["weight_hh_l0"], p.get("bias_ih_l0"),
        p.get("bias_hh_l0"), weight_hr=p.get("weight_hr_l0")))
    assert_close(ours(x), [seq.numpy(), h[0].numpy(), c[0].numpy()])


@pytest.mark.parametrize("convert, kwargs, argument", [
    # 4 units' kernel, 3 units' bias
    (from_tf1_lstm_cell, dict(kernel=np.zeros((7, 16)), bias=np.zeros(12)),
     "kernel"),
    (from_tf1_lstm_cell, dict(kernel=np.zeros((5, 16)), bias=np.zeros(16),
                              projection_kernel=np.zeros((5, 2))),
     "projection_kernel"),
    (from_tf1_lstm_cell, dict(kernel=np.zeros((7, 16)), bias=np.zeros(16),
                              w_i_diag=np.zeros(4), w_f_diag=np.zeros(3),
                              w_o_diag=np.zeros(4)), "w_f_diag"),
    (from_torch_lstm, dict(weight_ih=np.zeros((16, 3)),
                           weight_hh=np.zeros((12, 4))), "weight_hh"),
    (from_torch_lstm, dict(weight_ih=np.zeros((0, 3)),
                           weight_hh=np.zeros((0, 0))), "weight_ih"),
    (from_tf1_lstm_cell, dict(kernel=np.zeros((3, 0)), bias=np.zeros(0)),
     "bias"),
    (from_torch_lstm, dict(weight_ih=np.zeros((16, 3)),
                           weight_hh=np.zeros((16, 4)),
                           bias_ih=np.zeros(16)), "bias_hh"),
    (from_torch_lstm, dict(weight_ih=np.zeros((16, 3)),
                           weight_hh=np.zeros((16, 2)),
                           weight_hr=np.zeros((2, 5))), "weight_hr"),
    # weight_hr transposed, or not a matrix
    (from_torch_lstm, dict(weight_ih=np.zeros((16, 3)),
                           weight_hh=np.zeros((16, 2)),
                           weight_hr=np.zeros((4, 2))), "weight_hr"),
    (from_torch_lstm, dict(weight_ih=np.zeros((16, 3)),
                           weight_hh=np.zeros((16, 2)),
                           weight_hr=np.float32(1.0)), "weight_hr"),
    # nn.LSTM(bias=False, proj_size=2)'s parameters passed positionally
    (from_torch_lstm, dict(weight_ih=np.zeros((16, 3)),
                           weight_hh=np.zeros((16, 2)),
                           bias_ih=np.zeros((2, 4))), "weight_hr"),
])
def test_converters_reject_inconsistent_shapes(convert, kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        convert(**kwargs)


def _onnx_runtime_lstm(x, weights, units, cifg, initial_state):
    """Run ONNX's `LSTM` op (ONNX Runtime's kernel) over batch-major `x`
    with our layer's weights, converted to ONNX's layout: gate order i, o,
    f, c, kernels transposed, peepholes `P` = (i, o, f), `input_forget=1`
    for CIFG (f = 1 - i, no forget weights)."""
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper, numpy_helper

    names = "ico" if cifg else "ifco"

    def onnx_order(w):
        gates = dict(zip(names, np.split(w, len(names), axis=-1)))
        gates.setdefault("f", np.zeros_like(gates["i"]))
        return np.concatenate([gates[g] for g in "iofc"], axis=-1)

    zeros = np.zeros(units, "float32")
    peep = [weights.get(f"{g}_gate_peephole_weights", zeros)
            for g in ("input", "output", "forget")]
    consts = {
        "W": onnx_order(weights["kernel"]).T[None],
        "R": onnx_order(weights["recurrent_kernel"]).T[None],
        "B": np.concatenate(
            [onnx_order(weights["bias"]), np.zeros(4 * units, "float32")]
        )[None],
        "P": np.concatenate(peep)[None],
        "initial_h": initial_state[0][None],
        "initial_c": initial_state[1][None],
    }
    node = helper.make_node(
        "LSTM",
        ["X", "W", "R", "B", "", "initial_h", "initial_c", "P"],
        ["Y", "Y_h", "Y_c"],
        hidden_size=units,
        input_forget=int(cifg),
    )
    batch, steps, features = x.shape
    graph = helper.make_graph(
        [node],
        "lstm",
        [helper.make_tensor_value_info(
            "X", TensorProto.FLOAT, [steps, batch, features])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None)
         for n in ("Y", "Y_h", "Y_c")],
        initializer=[numpy_helper.from_array(v.astype("float32"), k)
                     for k, v in consts.items()],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 14)]
    )
    session = ort.InferenceSession(
        model.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    y, h, c = session.run(None, {"X": np.transpose(x, (1, 0, 2))})
    return [np.transpose(y[:, 0], (1, 0, 2)), h[0], c[0]]


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize(
    "variant",
    [{}, dict(use_peepholes=True), dict(coupled_input_forget=True),
     dict(coupled_input_forget=True, use_peepholes=True)],
    ids=["plain", "peepholes", "cifg", "cifg_peepholes"],
)
def test_matches_onnx_runtime_lstm_op(variant, seed):
    """ONNX's LSTM op, run by ONNX Runtime: peepholes (Gers et al. 2003,
    the output gate seeing the new cell) and CIFG (`input_forget`)."""
    x = random_inputs((3, 7, 5), seed)
    rs = np.random.RandomState(seed + 20)
    initial = [0.5 * rs.standard_normal((3, UNITS)).astype("float32")
               for _ in range(2)]
    layer = built(variant, x, seed=seed, return_sequences=True,
                  return_state=True)
    want = _onnx_runtime_lstm(
        x, weights_by_name(layer), UNITS,
        cifg=variant.get("coupled_input_forget", False),
        initial_state=initial,
    )
    assert_close(layer(x, initial_state=initial), want)


# -- reductions to keras.layers.LSTM ------------------------------------------
def _keras_lstm(x, weights):
    ref = keras.layers.LSTM(UNITS, return_sequences=True, return_state=True)
    ref(x)
    ref.set_weights(weights)
    return ref(x)


def _plain_weights(x, seed=5, in_dim=5, h_dim=UNITS):
    rs = np.random.RandomState(seed)
    return [0.5 * rs.standard_normal(s).astype("float32")
            for s in [(in_dim, 4 * UNITS), (h_dim, 4 * UNITS), (4 * UNITS,)]]


def _ours(x, weights, **variant):
    layer = krp.LSTM(UNITS, return_sequences=True, return_state=True,
                     **variant)
    layer(x)
    layer.set_weights(weights)
    return layer(x)


def test_reduction_peepholes_zero_equals_plain():
    x = random_inputs((3, 6, 5))
    w = _plain_weights(x)
    zeros = [np.zeros(UNITS, "float32")] * 3
    assert_close(_ours(x, w + zeros, use_peepholes=True), _keras_lstm(x, w))


def test_reduction_forget_bias_moves_into_bias():
    x = random_inputs((3, 6, 5))
    w = _plain_weights(x)
    shifted = [a.copy() for a in w]
    shifted[2][UNITS:2 * UNITS] += 1.5
    assert_close(_ours(x, w, forget_bias=1.5), _keras_lstm(x, shifted))


def test_reduction_wide_clips_and_identity_projection_equal_plain():
    x = random_inputs((3, 6, 5))
    w = _plain_weights(x)
    eye = np.eye(UNITS, dtype="float32")
    assert_close(
        _ours(x, w + [eye], cell_clip=1e6, num_proj=UNITS, proj_clip=1e6),
        _keras_lstm(x, w))


def test_reduction_no_forget_gate_is_plain_with_forget_gate_stuck_open():
    x = random_inputs((3, 6, 5))
    k, r, b = _plain_weights(x)
    keep = np.r_[0:UNITS, 2 * UNITS:4 * UNITS]  # i, c, o
    ours = _ours(x, [k[:, keep], r[:, keep], b[keep]], use_forget_gate=False)
    k[:, UNITS:2 * UNITS] = 0.0
    r[:, UNITS:2 * UNITS] = 0.0
    b[UNITS:2 * UNITS] = 100.0  # sigmoid(100) == 1.0 in float32
    assert_close(ours, _keras_lstm(x, [k, r, b]))


def test_defaults_are_the_plain_lstm():
    """With the variants' defaults, the cell is Keras's: its weights and
    its numbers."""
    x = random_inputs((3, 4))
    states = [random_inputs((3, 3), seed=s) for s in (1, 2)]
    ref, ours = keras.layers.LSTMCell(3), krp.LSTMCell(3)
    ref(x, states), ours(x, states)
    randomize_weights(ref, seed=3)
    ours.set_weights(ref.get_weights())
    assert [w.name for w in ours.weights] == [w.name for w in ref.weights]
    assert ours.is_plain and ours.num_gates == 4
    h, (h2, c) = ref(x, states)
    assert_close(ours(x, states), [h, [h2, c]])


# -- gradients ----------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_gradients_match_finite_differences_of_the_reference(name):
    """Our autodiff gradients (float64), of every weight and of the
    inputs, against central differences of the NumPy reference's loss:
    an independent derivative, so a wrong forward pass fails here too."""
    variant = VARIANTS[name]
    x = random_inputs((2, 4, 3)).astype("float64")
    layer = krp.LSTM(3, dtype="float64", **variant)
    layer(x)
    rs = np.random.RandomState(0)
    layer.set_weights([(1.0 if "gamma" in w.name else 0.0)
                       + 0.3 * rs.standard_normal(w.shape)
                       for w in layer.weights])
    x_var = tf.Variable(x)
    with tf.GradientTape() as tape:
        value = tf.reduce_sum(tf.sin(layer(x_var)))
    grads = tape.gradient(value, [x_var, *layer.trainable_weights])
    names = ["inputs"] + [w.name for w in layer.trainable_weights]
    arrays = {"inputs": x, **weights_by_name(layer)}

    def reference_loss():
        w = {k: v for k, v in arrays.items() if k != "inputs"}
        outputs, _, _ = reference.lstm(arrays["inputs"], w,
                                       **ref_kwargs(variant))
        return np.sin(outputs[:, -1]).sum()

    assert_close(value, reference_loss(), atol=1e-10)
    eps = 1e-6
    for name_, grad in zip(names, grads):
        grad = np.asarray(grad)
        assert np.isfinite(grad).all(), name_
        flat = arrays[name_].reshape(-1)  # a view: edits reach `arrays`
        for idx in rs.choice(flat.size, size=min(4, flat.size),
                             replace=False):
            old = flat[idx]
            values = []
            for delta in (eps, -eps):
                flat[idx] = old + delta
                values.append(reference_loss())
            flat[idx] = old
            numeric = (values[0] - values[1]) / (2 * eps)
            np.testing.assert_allclose(grad.ravel()[idx], numeric,
                                       rtol=1e-4, atol=1e-6,
                                       err_msg=f"{name} {name_}[{idx}]")


# -- shapes, config, errors ---------------------------------------------------
def test_peephole_and_projection_weights_start_apart():
    """A Keras 3 initializer draws the same numbers at every call: each
    extra weight gets its own copy of `kernel_initializer` (a seeded one:
    the seed plus 1, 2, 3 for the peepholes of i, f, o, 4 for the
    projection, as Keras's initializer with that seed draws them)."""
    x = random_inputs((2, 3, 5))
    layer = krp.LSTM(UNITS, use_peepholes=True, num_proj=3)
    layer(x)
    cell = layer.cell
    peepholes = [cell.input_gate_peephole_weights.numpy(),
                 cell.forget_gate_peephole_weights.numpy(),
                 cell.output_gate_peephole_weights.numpy()]
    assert all(np.abs(a - b).min() > 0 for a, b in
               itertools.combinations(peepholes, 2))
    seeded = krp.LSTM(UNITS, use_peepholes=True, num_proj=3,
                      kernel_initializer=keras.initializers.GlorotUniform(7))
    seeded(x)
    cell = seeded.cell
    glorot = keras.initializers.GlorotUniform
    assert_close(cell.kernel, glorot(7)((5, 4 * UNITS)))
    for k, gate in enumerate(["input", "forget", "output"], 1):
        assert_close(getattr(cell, f"{gate}_gate_peephole_weights"),
                     glorot(7 + k)((UNITS,)))
    assert_close(cell.projection_kernel, glorot(11)((UNITS, 3)))


def test_weight_shapes_and_order():
    x = random_inputs((2, 3, 5))
    layer = krp.LSTM(UNITS, use_peepholes=True, num_proj=2, layer_norm=True)
    layer(x)
    assert [(w.name, tuple(w.shape)) for w in layer.weights] == [
        ("kernel", (5, 16)), ("recurrent_kernel", (2, 16)), ("bias", (16,)),
        ("input_gate_peephole_weights", (4,)),
        ("forget_gate_peephole_weights", (4,)),
        ("output_gate_peephole_weights", (4,)),
        ("projection_kernel", (4, 2)),
        ("kernel_norm_gamma", (16,)), ("kernel_norm_beta", (16,)),
        ("recurrent_norm_gamma", (16,)), ("recurrent_norm_beta", (16,)),
        ("cell_norm_gamma", (4,)), ("cell_norm_beta", (4,)),
    ]
    cifg = krp.LSTM(UNITS, coupled_input_forget=True, use_peepholes=True)
    cifg(x)
    assert [(w.name, tuple(w.shape)) for w in cifg.weights] == [
        ("kernel", (5, 12)), ("recurrent_kernel", (4, 12)), ("bias", (12,)),
        ("input_gate_peephole_weights", (4,)),
        ("output_gate_peephole_weights", (4,)),
    ]


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_config_round_trip(name):
    layer = krp.LSTM(UNITS, **VARIANTS[name])
    config = json.loads(json.dumps(layer.get_config()))
    for key, value in VARIANTS[name].items():
        assert config[key] == value
    again = krp.LSTM.from_config(config)
    assert again.get_config() == layer.get_config()
    cell = krp.LSTMCell.from_config(krp.LSTMCell(3, **VARIANTS[name])
                                    .get_config())
    assert cell.get_config()["use_peepholes"] == VARIANTS[name].get(
        "use_peepholes", False)


@pytest.mark.parametrize("kwargs, error, words", [
    (dict(coupled_input_forget=True, use_forget_gate=False), ValueError,
     "coupled_input_forget"),
    (dict(forget_bias=1.0, coupled_input_forget=True), ValueError,
     "forget_bias"),
    (dict(forget_bias=1.0, use_forget_gate=False), ValueError, "forget_bias"),
    (dict(proj_clip=1.0), ValueError, "proj_clip"),
    (dict(num_proj=0), ValueError, "num_proj"),
    (dict(num_proj=2.5), TypeError, "num_proj"),
    (dict(cell_clip=-1.0), ValueError, "cell_clip"),
    (dict(cell_clip="big"), TypeError, "cell_clip"),
    (dict(forget_bias="one"), TypeError, "forget_bias"),
    (dict(forget_bias=float("nan")), ValueError, "forget_bias"),
    (dict(forget_bias=float("inf")), ValueError, "forget_bias"),
    (dict(use_peepholes="yes"), TypeError, "use_peepholes"),
])
def test_bad_variant_combinations(kwargs, error, words):
    with pytest.raises(error, match=words):
        krp.LSTM(UNITS, **kwargs)
    with pytest.raises(error, match=words):
        krp.LSTMCell(UNITS, **kwargs)


@pytest.mark.parametrize("name", ["peepholes", "projection", "layer_norm"])
def test_use_cudnn_true_with_a_variant_fails_at_construction(name):
    # The cuDNN kernel computes the plain LSTM only: no device can run it.
    with pytest.raises(ValueError, match="use_cudnn"):
        krp.LSTM(UNITS, use_cudnn=True, **VARIANTS[name])
    krp.LSTM(UNITS, use_cudnn=True)  # plain: decided at call, as Keras


def test_variants_positional_arguments_are_rejected():
    with pytest.raises(TypeError):
        krp.LSTM(UNITS, "tanh", "sigmoid", True, "glorot_uniform",
                 "orthogonal", "zeros", True, None, None, None, None, None,
                 None, None, 0.0, 0.0, 2, False, False, False, False, False,
                 None, "auto", True)


# -- saving and export, all variants in one model -----------------------------
def test_variants_save_reload_and_export_in_fresh_processes(tmp_path):
    inp = keras.Input((6, 5))
    masked = keras.layers.Masking(0.0)(inp)
    outs = [krp.LSTM(UNITS, name=name, **v)(masked)
            for name, v in sorted(VARIANTS.items())]
    outs.append(keras.layers.Bidirectional(
        krp.PeepholeLSTM(UNITS), name="bi")(masked))
    model = keras.Model(inp, keras.layers.Concatenate()(outs))
    rs = np.random.RandomState(0)
    model.set_weights([(1.0 if "gamma" in w.path else 0.0)
                       + 0.3 * rs.standard_normal(w.shape)
                       for w in model.weights])
    x = random_inputs((3, 6, 5))
    x[1, 4:] = 0.0  # masked tail
    want = model.predict(x, verbose=0)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "want.npy", want)
    model.save(tmp_path / "m.keras")
    model.export(str(tmp_path / "saved"), verbose=False)
    run_python(f"""
        import numpy as np, keras, keras_rnn_plus
        m = keras.models.load_model({str(tmp_path / 'm.keras')!r})
        x = np.load({str(tmp_path / 'x.npy')!r})
        got = m.predict(x, verbose=0)
        np.testing.assert_allclose(
            got, np.load({str(tmp_path / 'want.npy')!r}), atol=1e-6)
    """)
    run_python(f"""
        import sys, numpy as np, tensorflow as tf
        served = tf.saved_model.load({str(tmp_path / 'saved')!r})
        x = np.load({str(tmp_path / 'x.npy')!r})
        np.testing.assert_allclose(
            served.serve(x).numpy(), np.load({str(tmp_path / 'want.npy')!r}),
            atol=1e-5)
        assert "keras_rnn_plus" not in sys.modules
    """)


@pytest.mark.parametrize("implementation", [1, 2])
def test_layer_norm_training_with_dropout_equals_step_by_step(implementation):
    """The layer-norm LSTM computes its input half before the loop in
    training too; with dropout it must equal `keras.layers.RNN`'s
    step-by-step loop over the same cell (same seed, so the same masks).
    An equivalence of two routes; the numbers themselves are checked
    against the NumPy reference in
    `test_variant_training_with_dropout_matches_numpy_reference`."""
    x = random_inputs((3, 6, 5))
    kw = dict(layer_norm=True, use_peepholes=True, dropout=0.3,
              recurrent_dropout=0.2, seed=4, implementation=implementation)
    ours = krp.LSTM(UNITS, return_sequences=True, **kw)
    loop = keras.layers.RNN(krp.LSTMCell(UNITS, **kw), return_sequences=True)
    ours(x), loop(x)
    randomize_weights(ours, seed=5)  # fixed weights: a deterministic test
    loop.set_weights(ours.get_weights())
    assert_close(ours(x, training=True), loop(x, training=True))
    with tf.GradientTape(persistent=True) as tape:
        a = tf.reduce_sum(tf.sin(ours(x, training=True)))
        b = tf.reduce_sum(tf.sin(loop(x, training=True)))
    # Two float32 orders of the same sums, which layer norm magnifies:
    # relative tolerance (gradients reach tens here).
    assert_close(tape.gradient(a, ours.trainable_weights),
                 tape.gradient(b, loop.trainable_weights), atol=1e-4,
                 rtol=1e-4)


def test_layer_norm_under_mixed_float16_keeps_large_products():
    """Products whose variance overflows float16 (above 65504): normalised
    in float32, as Keras's `LayerNormalization` does, the layer still
    follows the NumPy reference (within float16 rounding)."""
    x = 300.0 * random_inputs((3, 6, 5))
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        layer = built(dict(layer_norm=True), x, return_sequences=True)
        got = keras.ops.convert_to_numpy(layer(x)).astype("float32")
    finally:
        keras.mixed_precision.set_global_policy("float32")
    want, _, _ = reference.lstm(x, weights_by_name(layer), layer_norm_=True)
    assert np.abs(want).max() > 0.1
    assert_close(got, want, atol=2e-2)


def test_torch_stacked_bidirectional_lstm_ports_layer_by_layer():
    """A 2-layer bidirectional `nn.LSTM` is two `Bidirectional(krp.LSTM)`
    layers: forward then `_reverse` weights of each layer, converted one
    by one (the README's recipe), give PyTorch's outputs."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(7)
    x = random_inputs((3, 6, 5), seed=7)
    theirs = torch.nn.LSTM(5, UNITS, num_layers=2, bidirectional=True,
                           batch_first=True)
    with torch.no_grad():
        for p in theirs.parameters():
            p.uniform_(-0.6, 0.6)
        expected, _ = theirs(torch.from_numpy(x))
    p = {k: v.detach().numpy() for k, v in theirs.named_parameters()}

    def converted(suffix):
        return from_torch_lstm(*(p[f"{name}{suffix}"] for name in (
            "weight_ih", "weight_hh", "bias_ih", "bias_hh")))

    ours = keras.Sequential([keras.Input((None, 5))] + [
        keras.layers.Bidirectional(krp.LSTM(UNITS, return_sequences=True))
        for _ in range(2)
    ])
    for k, layer in enumerate(ours.layers):
        layer.set_weights(converted(f"_l{k}") + converted(f"_l{k}_reverse"))
    assert_close(ours(x), expected.numpy())


_FIT_SCRIPT = """
import hashlib, os
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np, keras, keras_rnn_plus as krp
keras.utils.set_random_seed(0)
x = np.random.RandomState(0).rand(64, 20, 2).astype("float32")
y = np.random.RandomState(1).rand(64, 1).astype("float32")
m = keras.Sequential([keras.Input((20, 2)), krp.LSTM(16, {kwargs}),
                      keras.layers.Dense(1)])
m.compile(keras.optimizers.Adam(1e-2), "mse", jit_compile=False)
m.fit(x, y, batch_size=16, epochs=2, verbose=0, shuffle=False)
weights = np.concatenate([w.ravel() for w in m.get_weights()])
print(hashlib.sha256(weights.tobytes()).hexdigest())
"""


@pytest.mark.parametrize("kwargs", ["layer_norm=True",
                                    "layer_norm=True, use_peepholes=True"])
def test_seeded_fit_is_reproducible_across_processes(kwargs):
    """Under `keras.utils.set_random_seed`, `fit` gives the same weights
    bit for bit in two fresh processes, as Keras's own layers do (a
    layer-norm LSTM whose normalised input products were computed before
    the loop gave other bits in each process)."""
    import subprocess
    import sys

    code = _FIT_SCRIPT.format(kwargs=kwargs)
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True,
                           text=True, timeout=300) for _ in range(2)]
    for run in runs:
        assert run.returncode == 0, run.stderr[-3000:]
    first, second = (run.stdout.split()[-1] for run in runs)
    assert first == second
