"""How far below Keras's LSTM can any TensorFlow-graph layer go on this CPU?

    python benchmarks/floors.py            # both shapes below
    python benchmarks/floors.py --quick    # fewer repeats

The performance targets ask for 0.6 of `keras.layers.LSTM`'s time at the
small shape (32, 50, 16, 32) and 0.8 at the large one (128, 200, 128, 512).
This script measures, in one process, the parts of that time that no
layer running in TensorFlow's graph executor can avoid, and prints what is
left for the layer itself:

- small shape: Keras's own cost of a `predict_on_batch` / `train_on_batch`
  call (a model with the same inputs, outputs and weights whose layer has
  no time loop), and the cost of one iteration of a `tf.while_loop` that
  does almost nothing (forward, and forward + backward). The target leaves
  `(0.6 * keras_ms - call_ms) / steps` per timestep for the whole step.
- large shape: the matrix products alone (all input products in one
  product, then one `h @ recurrent_kernel` per step), against the Keras
  layer's forward pass, both as compiled `tf.function`s.
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from run import make_model, time_interleaved  # noqa: E402

SMALL = (32, 50, 16, 32)
LARGE = (128, 200, 128, 512)


class LastStepDense(keras.layers.Layer):
    """The LSTM's weights and output shape, no time loop: a model's fixed
    cost per call."""

    def __init__(self, units):
        super().__init__()
        self.units = units

    def build(self, shape):
        u = self.units
        self.kernel = self.add_weight(shape=(shape[-1], 4 * u))
        self.recurrent_kernel = self.add_weight(shape=(u, 4 * u))
        self.bias = self.add_weight(shape=(4 * u,), initializer="zeros")

    def call(self, x):
        z = x[:, -1] @ self.kernel + self.bias
        return z[:, : self.units] + 0.0 * self.recurrent_kernel[0, : self.units]


def empty_loop(steps, batch, units):
    """A `tf.while_loop` of `steps` iterations that scales h by a scalar and
    writes it out, as an RNN loop does; forward and forward + backward."""
    scale = tf.Variable(0.999)

    def loop(h):
        out = tf.TensorArray(tf.float32, size=steps)

        def body(t, h, out):
            h = h * scale
            return t + 1, h, out.write(t, h)

        _, h, out = tf.while_loop(lambda t, *_: t < steps, body, (0, h, out))
        return out.stack()

    h0 = tf.ones((batch, units))

    @tf.function
    def fwd():
        return loop(h0)

    @tf.function
    def fwd_bwd():
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(loop(h0))
        return tape.gradient(loss, scale)

    return fwd, fwd_bwd


def small(repeats):
    batch, steps, features, units = SMALL
    rs = np.random.RandomState(0)
    x = rs.rand(batch, steps, features).astype("float32")
    y = rs.rand(batch, units).astype("float32")
    lstm = make_model(keras.layers.LSTM(units), SMALL)
    call = make_model(LastStepDense(units), SMALL)
    loop_fwd, loop_bwd = empty_loop(steps, batch, units)
    (k_fwd, c_fwd, l_fwd) = time_interleaved(
        [lambda: lstm.predict_on_batch(x), lambda: call.predict_on_batch(x),
         loop_fwd], repeats)
    (k_tr, c_tr, l_tr) = time_interleaved(
        [lambda: lstm.train_on_batch(x, y), lambda: call.train_on_batch(x, y),
         loop_bwd], repeats)
    print(f"small shape {SMALL}, per call in ms, per timestep in us")
    for name, k, c, loop in (("inference", k_fwd, c_fwd, l_fwd),
                             ("training step", k_tr, c_tr, l_tr)):
        budget = (0.6 * k - c) / steps
        print(f"  {name}: keras.layers.LSTM {k * 1e3:.2f} ms; a model "
              f"without a time loop {c * 1e3:.2f} ms; keras per step "
              f"{(k - c) / steps * 1e6:.1f} us")
        print(f"    0.6 of Keras leaves {budget * 1e6:.1f} us per step; "
              f"an almost empty tf.while_loop iteration takes "
              f"{loop / steps * 1e6:.1f} us")


def large(repeats):
    batch, steps, features, units = LARGE
    rs = np.random.RandomState(0)
    x = tf.constant(rs.rand(batch, steps, features).astype("float32"))
    layer = keras.layers.LSTM(units)
    layer(x[:1])
    kernel, recurrent_kernel = layer.cell.kernel, layer.cell.recurrent_kernel

    @tf.function
    def keras_fwd():
        return layer(x)

    @tf.function
    def products_only():
        xw = tf.reshape(x, (-1, features)) @ kernel
        xw = tf.transpose(tf.reshape(xw, (batch, steps, -1)), (1, 0, 2))

        def body(t, h):
            z = xw[t] + h @ recurrent_kernel
            return t + 1, z[:, :units]

        h = tf.zeros((batch, units))
        return tf.while_loop(lambda t, h: t < steps, body, (0, h))[1]

    x_tm = tf.transpose(x, (1, 0, 2))

    @tf.function
    def products_per_step():
        def body(t, h):
            z = x_tm[t] @ kernel + h @ recurrent_kernel
            return t + 1, z[:, :units]

        h = tf.zeros((batch, units))
        return tf.while_loop(lambda t, h: t < steps, body, (0, h))[1]

    k, p1, p2 = time_interleaved(
        [keras_fwd, products_only, products_per_step], repeats)
    print(f"large shape {LARGE}, forward, ms")
    print(f"  keras.layers.LSTM {k * 1e3:.0f}; its matrix products alone: "
          f"{p1 * 1e3:.0f} with the input products in one go "
          f"({p1 / k:.2f} of Keras), {p2 * 1e3:.0f} one step at a time "
          f"({p2 / k:.2f}); the target asks for 0.80")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    print(f"{os.cpu_count()} cores; tensorflow {tf.__version__}, "
          f"keras {keras.__version__}")
    small(10 if args.quick else 30)
    large(2 if args.quick else 5)


if __name__ == "__main__":
    main()
