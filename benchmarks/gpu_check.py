"""On a GPU: our layers against Keras's on the fused (cuDNN) kernel, then
timings. Runs under the backend that `KERAS_BACKEND` names (TensorFlow by
default; PyTorch and JAX have cuDNN paths too).

    python benchmarks/gpu_check.py                 # checks, then timings
    python benchmarks/gpu_check.py --checks-only
    python benchmarks/gpu_check.py --checks-only --allow-cpu  # a dry run

For each configuration it builds `keras.layers.LSTM` / `GRU` and ours with
the same weights and checks, on the GPU:
- which ones run a cuDNN RNN kernel (in the traced graph, the profiled
  PyTorch ops, or the lowered JAX program; forward and gradient): ours
  must run it exactly when Keras's does, never for an LSTM variant, and
  Keras's plain LSTM must run it (so the check can see the kernel);
- outputs, and the weights after one SGD step (lr 1) of a model whose
  first layer is a `Dense` (so the gradients, the inputs' included),
  agree with those of Keras's own loop (`use_cudnn=False`), with float32
  products (no TF32) for the check; where Keras's default layer differs
  from its loop, that is printed too.
Then it runs `benchmarks/run.py` (without variants) on the GPU. Exits
non-zero if there is no GPU or a check fails. The tests never need a GPU;
this script is for a machine that has one.
"""

import argparse
import contextlib
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_rnn_plus as krp  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402

BACKEND = keras.backend.backend()

# (name, Keras class or None for a variant, our class, layer kwargs,
# right-padded mask?)
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
    ("LSTM relu", keras.layers.LSTM, krp.LSTM, dict(activation="relu"),
     False),
    ("LSTM dropout (training)", keras.layers.LSTM, krp.LSTM,
     dict(dropout=0.3, seed=3), False),
    ("Bidirectional LSTM", keras.layers.LSTM, krp.LSTM,
     dict(bidirectional=True, return_sequences=True), False),
    ("LSTM peepholes", None, krp.LSTM, dict(use_peepholes=True), False),
    ("LSTM layer_norm", None, krp.LSTM, dict(layer_norm=True), False),
    ("GRU", keras.layers.GRU, krp.GRU, {}, False),
    ("GRU seq+state backwards", keras.layers.GRU, krp.GRU,
     dict(return_sequences=True, return_state=True, go_backwards=True),
     False),
    ("GRU padded mask", keras.layers.GRU, krp.GRU,
     dict(return_sequences=True), True),
    ("GRU dropout (training)", keras.layers.GRU, krp.GRU,
     dict(dropout=0.3, seed=3), False),
    ("GRU reset_after=False", keras.layers.GRU, krp.GRU,
     dict(reset_after=False), False),
]
SHAPE = (8, 12, 5, 6)  # batch, steps, features, units


def gpu_name():
    if BACKEND == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        return gpus and tf.config.experimental.get_device_details(
            gpus[0]).get("device_name", gpus[0].name)
    if BACKEND == "torch":
        import torch

        return torch.cuda.is_available() and torch.cuda.get_device_name()
    import jax

    gpus = [d for d in jax.devices() if d.platform == "gpu"]
    return gpus and gpus[0].device_kind


def _flat(outputs):
    return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]


def traced_op_names(layer, x, mask):
    """The names of the ops that the layer's forward and gradient run (for
    JAX, the text of the lowered program)."""
    if BACKEND == "tensorflow":
        import tensorflow as tf

        @tf.function
        def f(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss = tf.add_n([tf.reduce_sum(o)
                                 for o in _flat(layer(x, mask=mask))])
            return tape.gradient(loss, [x] + layer.trainable_weights)

        defs = f.get_concrete_function(tf.TensorSpec(x.shape)).graph
        defs = defs.as_graph_def()
        return [n.op for n in defs.node] + [
            n.op for fn in defs.library.function for n in fn.node_def]
    if BACKEND == "torch":
        import torch

        x = keras.ops.convert_to_tensor(x).requires_grad_()
        with torch.profiler.profile(
                activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            sum(o.sum() for o in _flat(layer(x, mask=mask))).backward()
        return [event.name for event in prof.events()]
    import jax

    trainable = [v.value for v in layer.trainable_variables]
    frozen = [v.value for v in layer.non_trainable_variables]

    def loss(trainable, x):
        outputs, _ = layer.stateless_call(trainable, frozen, x, mask=mask)
        return sum(o.sum() for o in _flat(outputs))

    grad = jax.jit(jax.grad(loss, argnums=(0, 1)))
    return [grad.lower(trainable, x).as_text()]


def uses_cudnn(layer, x, mask):
    return any("cudnnrnn" in name.lower().replace("_", "")
               for name in traced_op_names(layer, x, mask))


@contextlib.contextmanager
def float32_products():
    """Exact float32 products (no TF32) for the comparisons."""
    if BACKEND == "torch":
        import torch

        flags = (torch.backends.cuda.matmul.allow_tf32,
                 torch.backends.cudnn.allow_tf32)
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        try:
            yield
        finally:
            (torch.backends.cuda.matmul.allow_tf32,
             torch.backends.cudnn.allow_tf32) = flags
    elif BACKEND == "jax":
        import jax

        with jax.default_matmul_precision("highest"):
            yield
    else:
        import tensorflow as tf

        previous = tf.config.experimental.tensor_float_32_execution_enabled()
        tf.config.experimental.enable_tensor_float_32_execution(False)
        try:
            yield
        finally:
            tf.config.experimental.enable_tensor_float_32_execution(previous)


def model(layer, padded):
    """`Dense` (whose gradient carries the layer's input gradient), then
    the layer; a boolean mask input where `padded`."""
    batch, steps, features, _ = SHAPE
    inputs = [keras.Input((steps, features), batch_size=batch)]
    x = keras.layers.Dense(features, use_bias=False)(inputs[0])
    if padded:
        inputs.append(keras.Input((steps,), batch_size=batch, dtype="bool"))
    outputs = layer(x, mask=inputs[1] if padded else None)
    net = keras.Model(inputs if padded else inputs[0], outputs)
    net.compile(keras.optimizers.SGD(1.0),
                loss=["mse"] * len(_flat(outputs)))
    return net


def make_layer(cls, units, bidirectional=False, **kwargs):
    layer = cls(units, **kwargs)
    return keras.layers.Bidirectional(layer) if bidirectional else layer


def check(name, keras_cls, our_cls, kwargs, padded, rs):
    batch, steps, features, units = SHAPE
    x = rs.standard_normal((batch, steps, features)).astype("float32")
    mask = None
    if padded:  # right padding: what cuDNN accepts
        lengths = rs.randint(1, steps + 1, batch)
        mask = np.arange(steps)[None] < lengths[:, None]
    ours = model(make_layer(our_cls, units, **kwargs), padded)
    layer = ours.layers[-1]
    if keras_cls is None:  # a variant: cuDNN has none; we must not use it
        ok = not uses_cudnn(layer, x, mask)
        print(f"{name:<26} cuDNN ours={not ok}: {'ok' if ok else 'FAIL'}")
        return ok, None
    ref = model(make_layer(keras_cls, units, **kwargs), padded)
    # Keras's own loop, which defines the numbers (Keras's cuDNN paths
    # must agree with it, and one does not: see the README).
    loop = model(make_layer(keras_cls, units, use_cudnn=False, **kwargs),
                 padded)
    ours.set_weights([w + 0.1 * rs.standard_normal(w.shape).astype("f4")
                      for w in ref.get_weights()])
    for m in (ref, loop):
        m.set_weights(ours.get_weights())
    inputs = [x, mask] if padded else x
    with float32_products():
        outs = [_flat(m.predict_on_batch(inputs)) for m in (ours, loop, ref)]
        targets = [rs.standard_normal(o.shape).astype("f4") for o in outs[0]]
        for m in (ours, loop, ref):
            m.train_on_batch(inputs, targets)
    steps_taken = [m.get_weights() for m in (ours, loop, ref)]

    def error(i, j):
        return (max(np.abs(a - b).max() for a, b in zip(outs[i], outs[j])),
                max(np.abs(a - b).max()
                    for a, b in zip(steps_taken[i], steps_taken[j])))

    (out_err, step_err), (keras_out_err, _) = error(0, 1), error(2, 1)
    cudnn_ref = uses_cudnn(ref.layers[-1], x, mask)
    cudnn_ours = uses_cudnn(layer, x, mask)
    ok = cudnn_ref == cudnn_ours and out_err < 1e-5 and step_err < 1e-4
    note = ("" if keras_out_err < 1e-5 else
            f" (Keras's default layer: max|dout|={keras_out_err:.1e})")
    print(f"{name:<26} cuDNN keras={cudnn_ref} ours={cudnn_ours} "
          f"against Keras's loop: max|dout|={out_err:.1e} "
          f"max|dstep|={step_err:.1e}: {'ok' if ok else 'FAIL'}{note}")
    return ok, cudnn_ref


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks-only", action="store_true")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--shapes", default=None,
                        help="for the timings, e.g. 32x50x16x32")
    parser.add_argument("--allow-cpu", action="store_true",
                        help="run without a GPU (to try the script; no "
                        "layer takes cuDNN then)")
    args = parser.parse_args(argv)
    name = gpu_name()
    if name:
        print(f"GPU: {name}; backend {BACKEND}")
    elif not args.allow_cpu:
        sys.exit(f"no GPU visible to the {BACKEND} backend")
    rs = np.random.RandomState(0)
    failures = 0
    for config in CONFIGS:
        ok, cudnn = check(*config, rs=rs)
        if config[0] == "LSTM" and bool(name) != cudnn:
            print("  (Keras's plain LSTM should run cuDNN exactly on a "
                  "GPU: the check cannot see the kernel)")
            ok = False
        failures += not ok
    if failures:
        sys.exit(f"{failures} check(s) failed")
    if not args.checks_only:
        timing = ["--no-variants", "--bidirectional", "--repeats",
                  str(args.repeats)]
        run.main(timing + (["--shapes", args.shapes] if args.shapes else []))


if __name__ == "__main__":
    main()
