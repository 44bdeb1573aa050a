"""Our layers under Keras's other backends (`KERAS_BACKEND=torch` and
`jax`, each where installed), in a fresh process: outputs, and weights
after one SGD step (so the gradients), equal Keras's own layers there, a
stateful layer's included, and compiled (`jit_compile=True`, with the slow
tests); a variant equals the NumPy reference; a model trains, saves and
reloads; all without TensorFlow, which the package must not need there."""

import importlib.util
import os

import pytest
from testing import run_python

STATEFUL = """
# A stateful layer trains (PyTorch's autograd needs its states copied)
# over consecutive batches as Keras's does. Under JAX the reference is
# Keras's stateful LSTM (whose training step there keeps the states it
# started from). Under PyTorch, Keras's stateful LSTM fails to train, so
# the reference is Keras's layer given the carried states as
# `initial_state`.
stateful = keras.Sequential([keras.Input((6, 5), batch_size=3),
                             krp.LSTM(4, stateful=True)])
if keras.backend.backend() == "torch":
    carry = keras.layers.LSTM(4, return_state=True)
    carry(x)
    carry.set_weights(stateful.get_weights())
    h1, c1 = (keras.ops.convert_to_numpy(s) for s in carry(x)[1:])
    seq, h0, c0 = keras.Input((6, 5)), keras.Input((4,)), keras.Input((4,))
    ref = keras.Model([seq, h0, c0],
                      keras.layers.LSTM(4)(seq, initial_state=[h0, c0]))
    zeros = np.zeros((3, 4), "f4")
    ref_inputs = [[x, zeros, zeros], [x, h1, c1]]
else:
    ref = keras.Sequential([keras.Input((6, 5), batch_size=3),
                            keras.layers.LSTM(4, stateful=True)])
    ref_inputs = [x, x]
ref.set_weights(stateful.get_weights())
target = rs.standard_normal((3, 4)).astype("f4")
for m in (ref, stateful):
    m.compile(keras.optimizers.SGD(1.0), "mse", jit_compile=JIT)
for inputs in ref_inputs:
    ref.train_on_batch(inputs, target)
    stateful.train_on_batch(x, target)
    for w1, w2 in zip(stateful.get_weights(), ref.get_weights()):
        np.testing.assert_allclose(w1, w2, atol=1e-5, err_msg="stateful")
"""

SCRIPT = """
import sys
sys.modules["tensorflow"] = None  # any `import tensorflow` fails
import os
import numpy as np
import keras
import keras_rnn_plus as krp
from tests import reference

assert keras.backend.backend() == os.environ["KERAS_BACKEND"]
rs = np.random.RandomState(0)
x = rs.standard_normal((3, 6, 5)).astype("float32")
mask = np.ones((3, 6), bool)
mask[1, 4:] = False


def model(layer, mask_input):
    inputs = keras.Input((6, 5))
    if mask_input:
        m = keras.Input((6,), dtype="bool")
        out = layer(inputs, mask=m)
        return keras.Model([inputs, m], out)
    return keras.Model(inputs, layer(inputs))


cases = [
    (keras.layers.LSTM, krp.LSTM, {}, False),
    (keras.layers.LSTM, krp.LSTM,
     dict(return_sequences=True, go_backwards=True, unit_forget_bias=False,
          implementation=1), False),
    (keras.layers.LSTM, krp.LSTM, dict(return_sequences=True), True),
    (keras.layers.GRU, krp.GRU, dict(return_sequences=True), False),
    (keras.layers.GRU, krp.GRU, dict(reset_after=False), True),
]
for keras_cls, ours_cls, kwargs, masked in cases:
    ref = model(keras_cls(4, **kwargs), masked)
    ours = model(ours_cls(4, **kwargs), masked)
    ours.set_weights([w + 0.1 * rs.standard_normal(w.shape).astype("f4")
                      for w in ref.get_weights()])
    ref.set_weights(ours.get_weights())
    inputs = [x, mask] if masked else x
    a, b = ref.predict(inputs, verbose=0), ours.predict(inputs, verbose=0)
    np.testing.assert_allclose(b, a, atol=1e-5, err_msg=str(kwargs))
    target = rs.standard_normal(a.shape).astype("f4")
    for m in (ref, ours):
        m.compile(keras.optimizers.SGD(1.0), "mse")
        m.train_on_batch(inputs, target)
    for w1, w2 in zip(ours.get_weights(), ref.get_weights()):
        np.testing.assert_allclose(w1, w2, atol=1e-5, err_msg=str(kwargs))

# PyTorch's eager loop runs the step's product, bias, split and sigmoid /
# tanh as plain PyTorch operations in float32: bit for bit what the
# `keras.ops` step computes, forward and backward.
if keras.backend.backend() == "torch":
    from keras_rnn_plus import _base

    def outputs_and_gradients(layer):
        inputs = keras.ops.convert_to_tensor(x).requires_grad_()
        out = layer(inputs)
        (out * keras.ops.sin(out)).sum().backward()
        grads = [inputs.grad] + [w.value.grad for w in layer.weights]
        result = [keras.ops.convert_to_numpy(t) for t in [out] + grads]
        for w in layer.weights:
            w.value.grad = None
        return result

    for layer in (krp.LSTM(4, return_sequences=True, go_backwards=True),
                  krp.GRU(4, return_sequences=True),
                  krp.GRU(4, return_sequences=True, reset_after=False)):
        layer(x)
        layer.set_weights([rs.standard_normal(w.shape).astype("f4")
                           for w in layer.get_weights()])
        native = outputs_and_gradients(layer)
        plain_torch_ops, _base.TorchStepOps = _base.TorchStepOps, _base.StepOps
        through_keras_ops = outputs_and_gradients(layer)
        _base.TorchStepOps = plain_torch_ops
        for a, b in zip(native, through_keras_ops):
            np.testing.assert_array_equal(a, b)

# Seeded dropout in training (one mask, or one per gate): Keras's masks
# and numbers on this backend too. (Keras's GRU fails with
# implementation=1 and input dropout alone.)
for keras_cls, ours_cls, settings in (
        (keras.layers.LSTM, krp.LSTM, ((2, 0.0), (2, 0.3), (1, 0.3))),
        (keras.layers.GRU, krp.GRU, ((2, 0.0), (2, 0.3), (1, 0.3)))):
    for implementation, recurrent_dropout in settings:
        kwargs = dict(dropout=0.3, recurrent_dropout=recurrent_dropout,
                      seed=3, implementation=implementation,
                      return_sequences=True)
        ref, ours = keras_cls(4, **kwargs), ours_cls(4, **kwargs)
        ref(x)
        ours(x)
        ours.set_weights(ref.get_weights())
        want = keras.ops.convert_to_numpy(ref(x, training=True))
        got = keras.ops.convert_to_numpy(ours(x, training=True))
        np.testing.assert_allclose(got, want, atol=1e-6, err_msg=str(kwargs))

{stateful}
variant = krp.LSTM(4, use_peepholes=True, cell_clip=0.5, num_proj=3,
                   layer_norm=True, return_sequences=True)
variant(x)
variant.set_weights([(1.0 if "gamma" in w.name else 0.0)
                     + 0.5 * rs.standard_normal(w.shape).astype("f4")
                     for w in variant.weights])
names = {w.name: keras.ops.convert_to_numpy(w) for w in variant.weights}
want, _, _ = reference.lstm(x, names, peepholes=True, cell_clip=0.5,
                            layer_norm_=True)
got = keras.ops.convert_to_numpy(variant(x))
np.testing.assert_allclose(got, want, atol=1e-5)

# Traced for ONNX, as Keras's exporter on this backend traces: Keras's
# numbers (the TensorFlow-only native ONNX step stays out of it).
from keras_rnn_plus import deploy
for keras_cls, ours_cls in ((keras.layers.LSTM, krp.LSTM),
                            (keras.layers.GRU, krp.GRU)):
    ref, layer = keras_cls(4), ours_cls(4)
    want = keras.ops.convert_to_numpy(ref(x))
    layer(x)
    layer.set_weights(ref.get_weights())
    run = layer
    if keras.backend.backend() == "jax":
        import jax
        run = jax.jit(layer)
    with deploy._exporting("onnx"):
        got = keras.ops.convert_to_numpy(run(x))
    np.testing.assert_allclose(got, want, atol=1e-6)

net = keras.Sequential([keras.Input((6, 5)), krp.LSTM(4, use_peepholes=True),
                        keras.layers.Dense(1)])
net.compile("adam", "mse")
net.fit(x, np.ones((3, 1)), epochs=2, verbose=0)
path = os.path.join(os.environ["TMP_DIR"], "m.keras")
net.save(path)
again = keras.saving.load_model(path)
np.testing.assert_allclose(again.predict(x, verbose=0),
                           net.predict(x, verbose=0), atol=1e-6)
print("ok")
"""


SCRIPT = SCRIPT.replace("{stateful}", "JIT = False\n" + STATEFUL)

# Compiled, a stateful layer's training included (under `torch.compile`
# its states' in-place update corrupted the gradients, silently).
COMPILED = SCRIPT[: SCRIPT.index("cases = [")] + "JIT = True\n" + STATEFUL + """
# Compiled (`torch.compile`, XLA): the same as Keras's layers compiled.
for keras_cls, ours_cls in ((keras.layers.LSTM, krp.LSTM),
                            (keras.layers.GRU, krp.GRU)):
    ref, ours = model(keras_cls(4), False), model(ours_cls(4), False)
    ours.set_weights(ref.get_weights())
    target = rs.standard_normal((3, 4)).astype("f4")
    for m in (ref, ours):
        m.compile(keras.optimizers.SGD(1.0), "mse", jit_compile=True)
        m.train_on_batch(x, target)
    np.testing.assert_allclose(ours.predict(x, verbose=0),
                               ref.predict(x, verbose=0), atol=1e-5)
print("ok")
"""


EXPORT = """
import sys
sys.modules["tensorflow"] = None  # any `import tensorflow` fails
import os
import numpy as np
import keras
import onnxruntime
import keras_rnn_plus as krp

x = np.random.RandomState(0).standard_normal((2, 5, 3)).astype("float32")
model = keras.Sequential([keras.Input((5, 3), batch_size=2),
                          krp.LSTM(4, go_backwards=True)])
model(x)
path = os.path.join(os.environ["TMP_DIR"], "m.onnx")
krp.deploy.export(model, path, format="onnx")
session = onnxruntime.InferenceSession(path)
got = session.run(None, {session.get_inputs()[0].name: x})[0]
np.testing.assert_allclose(got, keras.ops.convert_to_numpy(model(x)),
                           atol=1e-6)
# An open length would be traced as one step: refused, for both formats.
for layer in (krp.LSTM(4), keras.layers.Bidirectional(krp.GRU(4)),
              keras.layers.RNN(krp.LSTMCell(4))):
    open_length = keras.Sequential([keras.Input((None, 3)), layer])
    open_length(x)
    for fmt in ("onnx", "litert"):
        try:
            krp.deploy.export(open_length, path, format=fmt)
        except ValueError as e:
            assert "open sequence length" in str(e), e
        else:
            raise AssertionError("a model of open length was exported")
# LiteRT goes through PyTorch's converter (a stand-in with its keyword
# arguments here), which takes no TensorFlow `target_spec`.
import inspect, types
converted = []
def convert(module, sample_args, sample_kwargs=None, *, quant_config=None,
            dynamic_shapes=None):
    converted.append(sample_args)
    return types.SimpleNamespace(export=lambda path: open(path, "wb").close())
sys.modules["litert_torch"] = types.SimpleNamespace(convert=convert)
krp.deploy.export(model, path + ".tflite", format="litert")
assert converted, "the converter was not reached"
print("ok")
"""


JAX_CUDNN_PATH = """
import importlib
import itertools
import numpy as np
import keras
from jax.experimental import rnn
import keras_rnn_plus as krp

calls = []


def kernel_on_cpu(x, h0, c0, weights, seq_lengths, input_size, hidden_size,
                  num_layers, dropout, bidirectional, **_):
    calls.append(1)
    w_ih, w_hh, b_ih, b_hh = rnn.unpack_lstm_weights(
        weights, input_size, hidden_size, num_layers, bidirectional)
    return rnn.lstm_ref(x, h0, c0, w_ih, w_hh, b_ih, b_hh, seq_lengths,
                        input_size, hidden_size, num_layers, dropout,
                        bidirectional)


# Keras's JAX cuDNN path, run on the CPU with JAX's reference kernel.
rnn.lstm = kernel_on_cpu
importlib.import_module("keras.src.backend.jax.rnn")._is_gpu_available = (
    lambda: True)
x = np.random.RandomState(0).standard_normal((3, 5, 2)).astype("float32")


def check(make):
    loop, ours = make(keras.layers.LSTM, use_cudnn=False), make(krp.LSTM)
    loop(x)
    ours(x)
    ours.set_weights([0.5 * w for w in loop.get_weights()])
    loop.set_weights(ours.get_weights())
    got, want = ours(x), loop(x)
    for a, b in zip(keras.tree.flatten(got), keras.tree.flatten(want)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6)


for go_backwards, sequences in itertools.product([True, False], repeat=2):
    check(lambda cls, **kw: cls(4, go_backwards=go_backwards,
                                return_sequences=sequences,
                                return_state=True, **kw))
check(lambda cls, **kw: keras.layers.Bidirectional(
    cls(4, return_sequences=True, **kw)))
assert calls, "the cuDNN path was not taken"
print("ok")
"""


def _run(tmp_path, backend, script):
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = f"import os\nos.environ['TMP_DIR'] = {str(tmp_path)!r}\n" + script
    out = run_python(code, cwd=root, backend=backend)
    assert out.strip().endswith("ok")


@pytest.mark.parametrize("backend", [
    "torch", pytest.param("jax", marks=pytest.mark.slow)])
def test_layers_under_another_backend(tmp_path, backend):
    _run(tmp_path, backend, SCRIPT)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_compiled_models_under_another_backend(tmp_path, backend):
    _run(tmp_path, backend, COMPILED)


def test_onnx_export_under_torch_without_tensorflow(tmp_path):
    """`deploy.export` needs TensorFlow only for LiteRT: under PyTorch an
    ONNX export runs without it, and ONNX Runtime gives Keras's numbers."""
    pytest.importorskip("onnxruntime")
    _run(tmp_path, "torch", EXPORT)


@pytest.mark.slow
def test_jax_cudnn_path_with_go_backwards_follows_keras_loop(tmp_path):
    """Keras 3.15's JAX cuDNN LSTM returns a `go_backwards` sequence in the
    inputs' order; ours, on that path, returns Keras's loop's numbers
    (the reversed sequence's outputs, in processing order), also inside
    `Bidirectional`. The GPU is faked and the kernel is JAX's own CPU
    reference of it (`jax.experimental.rnn.lstm_ref`)."""
    _run(tmp_path, "jax", JAX_CUDNN_PATH)
