"""Our layers under Keras's PyTorch backend (`KERAS_BACKEND=torch`), in a
fresh process: outputs and weight gradients equal Keras's own layers there,
a variant equals the NumPy reference, and a model trains and reloads."""

import importlib.util
import os

import pytest

from tests.testing import run_python

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("torch") is None, reason="needs PyTorch"
)

SCRIPT = """
import os
os.environ["KERAS_BACKEND"] = "torch"
import numpy as np
import keras
import keras_rnn_plus as krp
from tests import reference

assert keras.backend.backend() == "torch"
rs = np.random.RandomState(0)
x = rs.standard_normal((3, 6, 5)).astype("float32")
mask = np.ones((3, 6), bool)
mask[1, 4:] = False
weights_out = rs.standard_normal((3, 6, 4)).astype("float32")


def run(layer, **kwargs):
    import torch
    for v in layer.trainable_weights:
        v.value.grad = None
    out = layer(x, **kwargs)
    out = out[0] if isinstance(out, (list, tuple)) else out
    seq = out if out.ndim == 3 else out[:, None, :]
    w = torch.as_tensor(weights_out[:, : seq.shape[1], : seq.shape[2]])
    (seq * w).sum().backward()
    grads = [v.value.grad.numpy().copy() for v in layer.trainable_weights]
    return out.detach().numpy(), grads


cases = [
    (keras.layers.LSTM, krp.LSTM, {}, {}),
    (keras.layers.LSTM, krp.LSTM,
     dict(return_sequences=True, go_backwards=True, unit_forget_bias=False,
          implementation=1), {}),
    (keras.layers.LSTM, krp.LSTM, dict(return_sequences=True),
     dict(mask=mask)),
    (keras.layers.GRU, krp.GRU, dict(return_sequences=True), {}),
    (keras.layers.GRU, krp.GRU, dict(reset_after=False), {}),
]
for keras_cls, ours_cls, kwargs, call in cases:
    ref, ours = keras_cls(4, **kwargs), ours_cls(4, **kwargs)
    ref(x)
    ours(x)
    ours.set_weights([w + 0.1 * rs.standard_normal(w.shape).astype("f4")
                      for w in ref.get_weights()])
    ref.set_weights(ours.get_weights())
    (a, ga), (b, gb) = run(ref, **call), run(ours, **call)
    np.testing.assert_allclose(b, a, atol=1e-5, err_msg=str(kwargs))
    for g1, g2 in zip(gb, ga):
        np.testing.assert_allclose(g1, g2, atol=1e-4, err_msg=str(kwargs))

variant = krp.LSTM(4, use_peepholes=True, cell_clip=0.5, num_proj=3,
                   layer_norm=True, return_sequences=True)
variant(x)
variant.set_weights([(1.0 if "gamma" in w.name else 0.0)
                     + 0.5 * rs.standard_normal(w.shape).astype("f4")
                     for w in variant.weights])
names = {w.name: w.numpy() for w in variant.weights}
want, _, _ = reference.lstm(x, names, peepholes=True, cell_clip=0.5,
                            layer_norm_=True)
got = keras.ops.convert_to_numpy(variant(x))
np.testing.assert_allclose(got, want, atol=1e-5)

model = keras.Sequential([keras.Input((6, 5)), krp.LSTM(4, use_peepholes=True),
                          keras.layers.Dense(1)])
model.compile("adam", "mse")
model.fit(x, np.ones((3, 1)), epochs=2, verbose=0)
path = os.path.join(os.environ["TMP_DIR"], "m.keras")
model.save(path)
again = keras.saving.load_model(path)
np.testing.assert_allclose(again.predict(x, verbose=0),
                           model.predict(x, verbose=0), atol=1e-6)
print("ok")
"""


def test_layers_under_the_torch_backend(tmp_path):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = f"import os\nos.environ['TMP_DIR'] = {str(tmp_path)!r}\n" + SCRIPT
    out = run_python(code, cwd=root, backend="torch")
    assert out.strip().endswith("ok")
