"""Tutorial 1: `krp.LSTM` as a drop-in replacement for `keras.layers.LSTM`.

The task: from a window of a noisy sine wave (random frequency, phase and
amplitude), predict the next value. The script

1. builds the same model (Input -> LSTM -> Dense) twice, once with
   `keras.layers.LSTM` and once with `krp.LSTM`;
2. trains ours briefly with `model.fit`;
3. copies the trained weights into the Keras model and checks that
   predictions and gradients agree;
4. saves ours to a `.keras` file and loads it back;
5. exports a TensorFlow SavedModel and serves it with `tf.saved_model.load`;
6. writes a loss curve and a prediction plot (PNG) and a summary (JSON).

Every check prints `CHECK <name>: PASS` or `FAIL`; the script exits with
status 1 if any check fails.

    python tutorials/01_drop_in_lstm.py          # < 1 minute on 2 CPU cores
    python tutorials/01_drop_in_lstm.py --quick  # a few seconds
    python tutorials/01_drop_in_lstm.py --out /tmp/run1
"""

import os
import pathlib
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import _common  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from _common import Checks, finish  # noqa: E402

import keras_rnn_plus as krp  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "output" / "01_drop_in_lstm"

STEPS = 24  # window length
UNITS = 32
PARITY_ATOL = 1e-5  # predictions, float32
GRAD_ATOL = 1e-4  # gradients, float32


def parse_args(argv=None):
    parser = _common.parser(
        __doc__,
        DEFAULT_OUT,
        "tiny data and 2 epochs: runs in seconds (for the tests)",
    )
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def make_data(n, seed):
    """Windows of `STEPS` values of a noisy sine, and the next clean value.

    Returns `x` of shape `(n, STEPS, 1)` and `y` of shape `(n, 1)`.
    """
    rs = np.random.RandomState(seed)
    freq = rs.uniform(0.1, 0.4, (n, 1))
    phase = rs.uniform(0, 2 * np.pi, (n, 1))
    amp = rs.uniform(0.5, 1.5, (n, 1))
    t = np.arange(STEPS + 1)[None, :]
    clean = amp * np.sin(freq * t + phase)
    noisy = clean[:, :STEPS] + 0.05 * rs.standard_normal((n, STEPS))
    x = noisy[..., None].astype("float32")
    y = clean[:, STEPS:].astype("float32")
    return x, y


def make_model(lstm_class):
    """The same architecture with either LSTM class."""
    return keras.Sequential(
        [
            keras.Input((STEPS, 1)),
            lstm_class(UNITS),
            keras.layers.Dense(1),
        ],
        name=f"sine_{lstm_class.__module__.split('.')[0]}",
    )


def loss_gradients(model, x, y):
    """Gradients of the mean squared error w.r.t. every trainable weight."""
    with tf.GradientTape() as tape:
        loss = keras.losses.mean_squared_error(y, model(x))
        loss = tf.reduce_mean(loss)
    return tape.gradient(loss, model.trainable_weights)


def max_abs_diff(a, b):
    return max(
        float(np.max(np.abs(np.asarray(u) - np.asarray(v))))
        for u, v in zip(a, b)
    )


def plot(history, x_test, y_test, pred, baseline_mse, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    epochs = np.arange(1, len(history["loss"]) + 1)
    ax1.plot(epochs, history["loss"], "o-", label="training loss")
    ax1.plot(epochs, history["val_loss"], "s-", label="validation loss")
    ax1.axhline(
        baseline_mse,
        color="gray",
        ls="--",
        label="test baseline: repeat last value",
    )
    ax1.set_yscale("log")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("mean squared error")
    ax1.set_title("krp.LSTM training")
    ax1.legend()

    t = np.arange(STEPS + 1)
    for i, color in zip(range(3), ["C0", "C1", "C2"]):
        ax2.plot(t[:STEPS], x_test[i, :, 0], color=color, alpha=0.6)
        ax2.plot(
            t[STEPS],
            y_test[i, 0],
            "o",
            color=color,
            label="target" if i == 0 else None,
        )
        ax2.plot(
            t[STEPS],
            pred[i, 0],
            "x",
            color=color,
            ms=10,
            mew=2,
            label="prediction" if i == 0 else None,
        )
    ax2.set_xlabel("time step")
    ax2.set_ylabel("value")
    ax2.set_title("next-value prediction (test windows)")
    ax2.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    args = parse_args(argv)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    start = time.time()
    keras.utils.set_random_seed(args.seed)
    n_train, n_test, epochs = (256, 64, 2) if args.quick else (4096, 512, 12)
    x_train, y_train = make_data(n_train, seed=args.seed)
    x_test, y_test = make_data(n_test, seed=args.seed + 1)
    checks = Checks()

    # -- 1. the same model with either LSTM ------------------------------
    ours = make_model(krp.LSTM)
    theirs = make_model(keras.layers.LSTM)
    print(
        f"keras {keras.__version__}, tensorflow {tf.__version__}, "
        f"keras_rnn_plus {krp.__version__}"
    )
    ours.summary()

    # -- 2. train ours ---------------------------------------------------
    ours.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    initial_mse = float(ours.evaluate(x_test, y_test, verbose=0))
    fit = ours.fit(
        x_train,
        y_train,
        validation_split=0.2,
        epochs=epochs,
        batch_size=64,
        verbose=2,
    )
    test_mse = float(ours.evaluate(x_test, y_test, verbose=0))
    baseline_mse = float(np.mean((x_test[:, -1] - y_test) ** 2))
    print(
        f"test MSE: before training {initial_mse:.4f}, after "
        f"{test_mse:.4f}; baseline (repeat the last value) "
        f"{baseline_mse:.4f}"
    )
    if args.quick:  # two epochs: the loss must at least go down
        ok, target = test_mse < initial_mse, f"< {initial_mse:.4f}"
    else:  # trained: better than repeating the last input value
        ok, target = test_mse < baseline_mse, f"< baseline {baseline_mse:.4f}"
    checks("training", ok, f"test MSE {test_mse:.4f} {target}")

    # -- 3. parity with keras.layers.LSTM --------------------------------
    theirs.set_weights(ours.get_weights())
    pred = ours.predict(x_test, verbose=0)
    pred_diff = max_abs_diff([pred], [theirs.predict(x_test, verbose=0)])
    grad_diff = max_abs_diff(
        loss_gradients(ours, x_test, y_test),
        loss_gradients(theirs, x_test, y_test),
    )
    print(
        f"krp.LSTM vs keras.layers.LSTM with the same weights: "
        f"predictions max abs diff {pred_diff:.2e}, gradients max abs "
        f"diff {grad_diff:.2e}"
    )
    checks(
        "parity",
        pred_diff <= PARITY_ATOL and grad_diff <= GRAD_ATOL,
        f"predictions {pred_diff:.2e} <= {PARITY_ATOL:g}, "
        f"gradients {grad_diff:.2e} <= {GRAD_ATOL:g}",
    )

    # -- 4. save to .keras and load back ---------------------------------
    keras_path = out / "model.keras"
    ours.save(keras_path)
    reloaded = keras.models.load_model(keras_path)
    reload_diff = max_abs_diff([pred], [reloaded.predict(x_test, verbose=0)])
    checks(
        "keras_file",
        isinstance(reloaded.layers[0], krp.LSTM) and reload_diff <= 1e-6,
        f"{keras_path.name}: layer {type(reloaded.layers[0]).__name__}, "
        f"predictions max abs diff {reload_diff:.2e}",
    )

    # -- 5. export a SavedModel and serve it -----------------------------
    export_path = out / "saved_model"
    ours.export(str(export_path), verbose=False)
    served = tf.saved_model.load(str(export_path))
    n = min(37, n_test)  # a batch size the model was never called with
    served_pred = served.serve(tf.constant(x_test[:n])).numpy()
    export_diff = max_abs_diff([served_pred], [pred[:n]])
    checks(
        "saved_model",
        export_diff <= PARITY_ATOL,
        f"{export_path.name}/ served on a batch of {n}: max abs diff "
        f"{export_diff:.2e}",
    )

    # -- 6. plot and summary ---------------------------------------------
    plot_path = out / "training.png"
    plot(fit.history, x_test, y_test, pred, baseline_mse, plot_path)
    print(f"wrote {plot_path}")
    summary = dict(
        quick=args.quick,
        epochs=epochs,
        train_samples=n_train,
        test_mse_before=initial_mse,
        test_mse_after=test_mse,
        baseline_mse=baseline_mse,
        history={k: [float(v) for v in vs] for k, vs in fit.history.items()},
        parity_prediction_diff=pred_diff,
        parity_gradient_diff=grad_diff,
        keras_file_diff=reload_diff,
        saved_model_diff=export_diff,
        checks=checks.results,
        seconds=round(time.time() - start, 1),
    )
    return finish(out, summary, checks, start)


if __name__ == "__main__":
    sys.exit(main())
