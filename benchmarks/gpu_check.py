"""On a GPU: our layers against Keras's on the cuDNN kernel, then timings.

    python benchmarks/gpu_check.py                 # checks, then timings
    python benchmarks/gpu_check.py --checks-only
    python benchmarks/gpu_check.py --checks-only --allow-cpu  # a dry run

For each configuration it builds `keras.layers.LSTM` / `GRU` and ours with
the same weights and checks, on the GPU:
- which ones run the cuDNN kernel (a `CudnnRNN*` op in the traced graph):
  ours and Keras's must both run it for the configurations it supports,
  and neither for the others;
- outputs, final states and gradients (inputs and weights) agree.
Then it runs `benchmarks/run.py` (without variants) on the GPU. Exits
non-zero if there is no GPU or a check fails. The tests never need a GPU;
this script is for a machine that has one.
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_rnn_plus as krp  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402

# (name, Keras class, our class, layer kwargs, right-padded mask?)
CONFIGS = [
    ("LSTM", keras.layers.LSTM, krp.LSTM, {}, False),
    ("LSTM seq+state", keras.layers.LSTM, krp.LSTM,
     dict(return_sequences=True, return_state=True), False),
    ("LSTM backwards", keras.layers.LSTM, krp.LSTM,
     dict(go_backwards=True, return_sequences=True), False),
    ("LSTM padded mask", keras.layers.LSTM, krp.LSTM,
     dict(return_sequences=True), True),
    ("LSTM no bias", keras.layers.LSTM, krp.LSTM, dict(use_bias=False),
     False),
    ("LSTM relu (no cuDNN)", keras.layers.LSTM, krp.LSTM,
     dict(activation="relu"), False),
    ("LSTM peepholes (no cuDNN)", None, krp.LSTM,
     dict(use_peepholes=True), False),
    ("GRU", keras.layers.GRU, krp.GRU, {}, False),
    ("GRU seq+state backwards", keras.layers.GRU, krp.GRU,
     dict(return_sequences=True, return_state=True, go_backwards=True),
     False),
    ("GRU padded mask", keras.layers.GRU, krp.GRU,
     dict(return_sequences=True), True),
    ("GRU reset_after=False (no cuDNN)", keras.layers.GRU, krp.GRU,
     dict(reset_after=False), False),
]


def uses_cudnn(layer, x, mask):
    """Whether the layer's traced call (forward and gradient) holds a
    cuDNN RNN op."""

    @tf.function
    def f(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            out = layer(x, mask=mask)
            out = out if isinstance(out, (list, tuple)) else [out]
            loss = tf.add_n([tf.reduce_sum(o) for o in out])
        return tape.gradient(loss, [x] + layer.trainable_weights)

    graph = f.get_concrete_function(tf.TensorSpec(x.shape)).graph
    defs = graph.as_graph_def()
    nodes = list(defs.node) + [n for fn in defs.library.function
                               for n in fn.node_def]
    return any(n.op.startswith("CudnnRNN") for n in nodes)


def outputs_and_grads(layer, x, mask):
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        outs = layer(x, mask=mask)
        outs = list(outs) if isinstance(outs, (list, tuple)) else [outs]
        loss = tf.add_n([
            tf.reduce_sum(o * tf.sin(tf.reshape(
                tf.range(tf.size(o), dtype=o.dtype), o.shape)))
            for o in outs
        ])
    grads = tape.gradient(loss, [x] + layer.trainable_weights)
    return [o.numpy() for o in outs], [g.numpy() for g in grads]


def check(name, keras_cls, our_cls, kwargs, padded, on_gpu):
    rs = np.random.RandomState(0)
    batch, steps, features, units = 8, 12, 5, 6
    x = rs.standard_normal((batch, steps, features)).astype("float32")
    mask = None
    if padded:  # right padding: what cuDNN accepts
        lengths = rs.randint(1, steps + 1, batch)
        mask = tf.constant(np.arange(steps)[None] < lengths[:, None])
    ours = our_cls(units, **kwargs)
    ours(x, mask=mask)
    if keras_cls is None:  # a variant: cuDNN has none; we must not use it
        ok = not uses_cudnn(ours, x, mask)
        print(f"{name:<34} cuDNN ours={not ok}: {'ok' if ok else 'FAIL'}")
        return ok
    ref = keras_cls(units, **kwargs)
    ref(x, mask=mask)
    ours.set_weights([w + 0.1 * rs.standard_normal(w.shape).astype("f4")
                      for w in ref.get_weights()])
    ref.set_weights(ours.get_weights())
    cudnn_ref, cudnn_ours = uses_cudnn(ref, x, mask), uses_cudnn(ours, x, mask)
    (o1, g1), (o2, g2) = (outputs_and_grads(ref, x, mask),
                          outputs_and_grads(ours, x, mask))
    out_err = max(np.abs(a - b).max() for a, b in zip(o1, o2))
    grad_err = max(np.abs(a - b).max() for a, b in zip(g1, g2))
    expected = on_gpu and "no cuDNN" not in name
    ok = cudnn_ref == cudnn_ours == expected
    ok = ok and out_err < 1e-5 and grad_err < 1e-4
    print(f"{name:<34} cuDNN keras={cudnn_ref} ours={cudnn_ours} "
          f"max|dout|={out_err:.1e} max|dgrad|={grad_err:.1e}: "
          f"{'ok' if ok else 'FAIL'}")
    return ok


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks-only", action="store_true")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--allow-cpu", action="store_true",
                        help="run without a GPU (to try the script; no "
                        "layer takes cuDNN then)")
    args = parser.parse_args(argv)
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        print(f"GPU: {details.get('device_name', gpus[0].name)}")
    elif not args.allow_cpu:
        sys.exit("no GPU visible to TensorFlow")
    results = [check(*config, on_gpu=bool(gpus)) for config in CONFIGS]
    if not all(results):
        sys.exit(f"{results.count(False)} check(s) failed")
    if not args.checks_only:
        run.main(["--no-variants", "--repeats", str(args.repeats)])


if __name__ == "__main__":
    main()
