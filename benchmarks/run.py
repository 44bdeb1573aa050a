"""Time keras_rnn_plus against the built-in Keras layers, in one process.

    python benchmarks/run.py            # the three shapes of the README
    python benchmarks/run.py --quick    # small shapes, few repeats

For each shape (batch, steps, features, units) it builds the layers with
copied weights, checks that they give the same outputs, then times,
interleaved, compiled forward inference (`predict_on_batch`) and a
training step (`train_on_batch`, Adam, MSE). It prints medians in ms and
ratios against the reference measured in the same run: `krp.LSTM` and
`krp.GRU` against `keras.layers.LSTM` / `GRU` (and `torch.nn.LSTM` where
PyTorch is installed), and every LSTM variant against plain `krp.LSTM`.
With `--memory` it also reports the peak memory of a training step of
`krp.LSTM` / `krp.GRU` and of Keras's (the memory a step allocates above
what was in use before it; Linux, see `peak_memory`).
"""

import argparse
import os
import platform
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_rnn_plus as krp  # noqa: E402

SHAPES = [(32, 50, 16, 32), (64, 100, 64, 128), (128, 200, 128, 512)]
QUICK_SHAPES = [(16, 20, 8, 16), (32, 40, 16, 32)]
VARIANTS = {
    "peepholes": dict(use_peepholes=True),
    "forget_bias+cell_clip": dict(forget_bias=1.0, cell_clip=3.0),
    "projection": dict(num_proj=None),  # filled in: units // 2
    "tf1 (peep+clip+proj)": dict(use_peepholes=True, cell_clip=3.0,
                                 num_proj=None, proj_clip=3.0),
    "no forget gate": dict(use_forget_gate=False),
    "cifg": dict(coupled_input_forget=True),
    "layer_norm": dict(layer_norm=True),
}


def make_model(layer, shape):
    batch, steps, features, _ = shape
    model = keras.Sequential(
        [keras.Input((steps, features), batch_size=batch), layer]
    )
    model.compile(optimizer="adam", loss="mse")
    return model


def time_interleaved(fns, repeats):
    """Median seconds of each callable, called round-robin."""
    for fn in fns:  # warm up (trace, compile)
        fn()
        fn()
    times = [[] for _ in fns]
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            fn()
            times[i].append(time.perf_counter() - start)
    return [float(np.median(t)) for t in times]


def gpu_timing():
    """Whether the Keras backend computes on a GPU (PyTorch is timed on it
    too then)."""
    backend = keras.backend.backend()
    if backend == "torch":
        import torch

        return torch.cuda.is_available()
    if backend == "jax":
        import jax

        return jax.default_backend() == "gpu"
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def torch_timer(shape):
    try:
        import torch
    except ImportError:
        return None
    batch, steps, features, units = shape
    torch.set_num_threads(os.cpu_count() or 1)
    device = "cuda" if gpu_timing() else "cpu"
    lstm = torch.nn.LSTM(features, units, batch_first=True).to(device)
    opt = torch.optim.Adam(lstm.parameters())
    x = torch.rand(batch, steps, features, device=device)
    y = torch.rand(batch, units, device=device)

    def fwd():
        with torch.no_grad():
            lstm(x)[0][:, -1].cpu()  # the last output, as predict_on_batch

    def train():
        opt.zero_grad()
        out, _ = lstm(x)
        loss = torch.nn.functional.mse_loss(out[:, -1], y)
        loss.backward()
        opt.step()
        loss.item()

    return fwd, train


def check_same(label, ref, ours, x, target, rs):
    """Give `ours` the weights of `ref`, drawn at random (biases included),
    and check that both compute the same outputs at inference and the
    same loss and update in a training step (the two paths that are
    timed); raise `SystemExit` if not."""
    ref.set_weights([rs.uniform(-0.5, 0.5, w.shape).astype(w.dtype)
                     for w in ref.get_weights()])
    ours.set_weights(ref.get_weights())
    checks = [("inference outputs", ref.predict_on_batch(x),
               ours.predict_on_batch(x)),
              ("training-step loss", ref.train_on_batch(x, target),
               ours.train_on_batch(x, target)),
              ("outputs after the step", ref.predict_on_batch(x),
               ours.predict_on_batch(x))]
    for what, a, b in checks:
        diff = float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
        if not diff < 1e-4:
            raise SystemExit(f"{label}: {what} differ by {diff}; not timed")


def bench_shape(shape, repeats, variants, bidirectional=False):
    batch, steps, features, units = shape
    rs = np.random.RandomState(0)
    x = rs.rand(batch, steps, features).astype("float32")
    y = rs.rand(batch, units).astype("float32")
    pairs = [("krp.LSTM / keras.layers.LSTM", keras.layers.LSTM(units),
              krp.LSTM(units)),
             ("krp.GRU / keras.layers.GRU", keras.layers.GRU(units),
              krp.GRU(units))]
    if bidirectional:
        pairs.append(("Bidirectional: krp.LSTM / keras LSTM",
                      keras.layers.Bidirectional(keras.layers.LSTM(units)),
                      keras.layers.Bidirectional(krp.LSTM(units))))
    rows = []
    for label, ref_layer, our_layer in pairs:
        ref, ours = make_model(ref_layer, shape), make_model(our_layer, shape)
        target = y if ref.output_shape[-1] == units else np.tile(y, 2)
        check_same(label, ref, ours, x, target, rs)
        fwd = time_interleaved(
            [lambda: ref.predict_on_batch(x),
             lambda: ours.predict_on_batch(x)], repeats)
        train = time_interleaved(
            [lambda: ref.train_on_batch(x, target),
             lambda: ours.train_on_batch(x, target)], repeats)
        rows.append((label, fwd, train))
        timers = torch_timer(shape) if label.startswith("krp.LSTM") else None
        if timers:
            t_fwd = time_interleaved(
                [timers[0], lambda: ours.predict_on_batch(x)], repeats)
            t_train = time_interleaved(
                [timers[1], lambda: ours.train_on_batch(x, y)], repeats)
            rows.append(("krp.LSTM / torch.nn.LSTM", t_fwd, t_train))
    if variants:
        plain = make_model(krp.LSTM(units), shape)
        for vname, kwargs in VARIANTS.items():
            kwargs = {k: (units // 2 if k == "num_proj" else v)
                      for k, v in kwargs.items()}
            model = make_model(krp.LSTM(units, **kwargs), shape)
            y_v = y[:, : kwargs.get("num_proj") or units]
            fwd = time_interleaved(
                [lambda: plain.predict_on_batch(x),
                 lambda: model.predict_on_batch(x)], repeats)
            train = time_interleaved(
                [lambda: plain.train_on_batch(x, y),
                 lambda: model.train_on_batch(x, y_v)], repeats)
            rows.append((f"{vname} / plain krp.LSTM", fwd, train))
    return rows


def peak_memory(layer, shape):
    """Peak memory (MiB) of a training step of `Sequential([layer])`, in a
    fresh process, the median of 3 steps after a warm-up step: the memory
    the step allocates above what was in use before it. TensorFlow keeps
    tensors of 256 KiB and more in its own pool, whose peak it reports
    (`tf.config.experimental.get_memory_info`); smaller ones come from
    `malloc`, which here returns each block to the system when it is
    freed (glibc's `MALLOC_MMAP_THRESHOLD_`), so that the peak resident
    set (Linux VmHWM) above the size before the step counts the live ones
    only, not the blocks an allocator keeps for reuse. The pool reports
    its statistics with oneDNN's CPU allocator only (on by default on
    some CPUs, off on others): the measuring process turns it on
    (`TF_ENABLE_ONEDNN_OPTS=1`, unless set), and counts the resident set
    alone where the statistics are still missing. TensorFlow backend
    only."""
    code = f"""
import os, statistics
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np, keras, tensorflow as tf, keras_rnn_plus as krp
def resident(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) / 1024
def pool(key):
    return tf.config.experimental.get_memory_info("CPU:0")[key] / 2**20
b, t, f, u = {shape}
m = keras.Sequential([keras.Input((t, f), batch_size=b), {layer}(u)])
m.compile(optimizer="adam", loss="mse")
x = np.random.rand(b, t, f).astype("float32")
y = np.random.rand(b, u).astype("float32")
m.train_on_batch(x, y)
try:
    tf.config.experimental.reset_memory_stats("CPU:0")
    pooled = True
except ValueError:  # no statistics from this allocator
    pooled = False
peaks = []
for _ in range(3):
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")
    if pooled:
        tf.config.experimental.reset_memory_stats("CPU:0")
    base = resident("VmRSS:")
    pool_base = pool("current") if pooled else 0.0
    m.train_on_batch(x, y)
    pool_peak = pool("peak") if pooled else 0.0
    peaks.append(resident("VmHWM:") - base + pool_peak - pool_base)
print(statistics.median(peaks), pooled)
"""
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="4096",
               MALLOC_TRIM_THRESHOLD_="0", KERAS_BACKEND="tensorflow")
    env.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                         text=True, env=env)
    if out.returncode != 0:
        raise SystemExit(f"measuring the memory of {layer} failed:\n"
                         f"{out.stderr[-3000:]}")
    peak, pooled = out.stdout.strip().splitlines()[-1].split()
    return float(peak), pooled == "True"


def positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def shape_list(text):
    """`BxTxFxU[,BxTxFxU...]`, four positive integers each."""
    try:
        shapes = [tuple(positive_int(v) for v in item.split("x"))
                  for item in text.split(",")]
    except (ValueError, argparse.ArgumentTypeError):
        shapes = []
    if not shapes or any(len(shape) != 4 for shape in shapes):
        raise argparse.ArgumentTypeError(
            "expected batch x steps x features x units, e.g. "
            f"32x50x16x32,64x100x64x128; got {text!r}"
        )
    return shapes


def cpu_name():
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="small shapes, few repeats (about half a minute)")
    parser.add_argument("--repeats", type=positive_int, default=None)
    parser.add_argument("--no-variants", action="store_true")
    parser.add_argument("--bidirectional", action="store_true",
                        help="also time the LSTMs inside Bidirectional")
    parser.add_argument("--memory", action="store_true",
                        help="also measure peak training memory")
    parser.add_argument("--shapes", type=shape_list, default=None,
                        help="e.g. 32x50x16x32,64x100x64x128")
    args = parser.parse_args(argv)
    if args.memory and keras.backend.backend() != "tensorflow":
        parser.error("--memory measures TensorFlow's memory: run it with "
                     "the TensorFlow backend")
    shapes = args.shapes or (QUICK_SHAPES if args.quick else SHAPES)
    repeats = args.repeats or (5 if args.quick else 20)
    print(f"machine: {cpu_name()}, "
          f"{os.cpu_count()} cores; keras {keras.__version__}, "
          f"backend {keras.backend.backend()} on the "
          f"{'GPU' if gpu_timing() else 'CPU'}")
    print(f"{'shape (B,T,F,U)':<20} {'comparison':<38} "
          f"{'fwd ms':>15} {'ratio':>6} {'train ms':>17} {'ratio':>6}")
    for shape in shapes:
        for label, fwd, train in bench_shape(shape, repeats,
                                             not args.no_variants,
                                             args.bidirectional):
            print(f"{str(shape):<20} {label:<38} "
                  f"{fwd[1]*1e3:7.2f}/{fwd[0]*1e3:7.2f} "
                  f"{fwd[1]/fwd[0]:6.2f} "
                  f"{train[1]*1e3:8.2f}/{train[0]*1e3:8.2f} "
                  f"{train[1]/train[0]:6.2f}", flush=True)
        for name in ("LSTM", "GRU") if args.memory else ():
            ours, pooled = peak_memory(f"krp.{name}", shape)
            ref, _ = peak_memory(f"keras.layers.{name}", shape)
            print(f"{str(shape):<20} peak training memory of {name} (MiB): "
                  f"ours {ours:.2f}, keras {ref:.2f}, ratio "
                  f"{ours / max(ref, 1e-9):.2f}"
                  + ("" if pooled else " (resident set only: TensorFlow "
                     "gave no pool statistics)"), flush=True)
    print("(ms columns: ours/reference; ratio < 1 means ours is faster)")


if __name__ == "__main__":
    main()
