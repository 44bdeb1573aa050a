"""Tutorial 7: inside the cell: the gates and the cell state of a trained
`krp.LSTM`, replayed step by step in NumPy.

The task is a one-bit memory (a "flip-flop"): the input has three
channels, "set" spikes, "reset" spikes and noise; the target at each step
is 1 if the last spike so far was a set, 0 if it was a reset (or if there
was none yet). The LSTM must write the bit into its cell state at a
spike and hold it through the noise in between; the plots show how the
trained cell does it (which gates move at the spikes, and which stay put).

The script

1. trains `krp.LSTM(UNITS, return_sequences=True) -> Dense(sigmoid)`;
2. reads the layer's weights (`kernel`, `recurrent_kernel`, `bias`, gate
   order i, f, c, o) and replays the documented equations in NumPy,

       z = x(t) kernel + h(t-1) recurrent_kernel + bias
       i, f, o = sigmoid(z_i), sigmoid(z_f), sigmoid(z_o)
       g = tanh(z_c)
       c(t) = f * c(t-1) + i * g
       h(t) = o * tanh(c(t))

   recording i, f, g, o, c and h at every step;
3. checks that the replay reproduces the layer's outputs `h`, its final
   state `c` and the model's predictions (atol 1e-5);
4. plots the gates and states over time as heatmaps, and the unit that
   holds the bit as line plots (PNG), and writes a summary (JSON).

Every check prints `CHECK <name>: PASS` or `FAIL`; the script exits with
status 1 if any check fails.

    python tutorials/07_inside_the_cell.py          # ~15 s, 2 CPU cores
    python tutorials/07_inside_the_cell.py --quick  # a few seconds
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
from _common import Checks, finish  # noqa: E402

import keras_rnn_plus as krp  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "output" / "07_inside_the_cell"

UNITS = 6
STEPS = 60
SPIKE_P = 0.05  # probability of a set (and of a reset) spike per step
REPLAY_ATOL = 1e-5


def parse_args(argv=None):
    parser = _common.parser(
        __doc__, DEFAULT_OUT, "small data, 2 epochs (for the tests)"
    )
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def make_data(n, seed):
    """Inputs `(n, STEPS, 3)` (set, reset, noise) and the bit `(n, STEPS,
    1)`."""
    rs = np.random.RandomState(seed)
    u = rs.rand(n, STEPS)
    set_ = u < SPIKE_P
    reset = (u >= SPIKE_P) & (u < 2 * SPIKE_P)
    x = np.stack([set_, reset, rs.rand(n, STEPS)], axis=-1).astype("float32")
    y = np.zeros((n, STEPS), "float32")
    bit = np.zeros(n, "float32")
    for t in range(STEPS):
        bit = np.where(set_[:, t], 1.0, np.where(reset[:, t], 0.0, bit))
        y[:, t] = bit
    return x, y[..., None]


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def replay(kernel, recurrent_kernel, bias, x):
    """The LSTM equations in NumPy (float64), one step at a time.

    Returns a dict of arrays `(batch, STEPS, UNITS)`: the gates `i`, `f`,
    `o`, the candidate `g`, the cell state `c` and the output `h`.
    """
    batch, steps, _ = x.shape
    units = recurrent_kernel.shape[0]
    h = np.zeros((batch, units))
    c = np.zeros((batch, units))
    record = {k: [] for k in "ifgoch"}
    for t in range(steps):
        z = x[:, t] @ kernel + h @ recurrent_kernel + bias
        z_i, z_f, z_c, z_o = np.split(z, 4, axis=-1)
        i, f, o = sigmoid(z_i), sigmoid(z_f), sigmoid(z_o)
        g = np.tanh(z_c)
        c = f * c + i * g
        h = o * np.tanh(c)
        for k, v in zip("ifgoch", (i, f, g, o, c, h)):
            record[k].append(v)
    return {k: np.stack(v, axis=1) for k, v in record.items()}


def plot_heatmaps(x, y, pred, rec, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [
        ("i", "input gate i", "viridis", (0, 1)),
        ("f", "forget gate f", "viridis", (0, 1)),
        ("o", "output gate o", "viridis", (0, 1)),
        ("g", "candidate g", "RdBu_r", (-1, 1)),
        ("c", "cell state c", "RdBu_r", None),
        ("h", "output h", "RdBu_r", (-1, 1)),
    ]
    fig, axes = plt.subplots(
        len(rows) + 1,
        1,
        figsize=(10, 11),
        sharex=True,
        gridspec_kw=dict(height_ratios=[1.3] + [1] * len(rows)),
    )
    t = np.arange(STEPS)
    ax = axes[0]
    ax.vlines(t[x[:, 0] > 0], 0, 1, color="C2", lw=2, label="set spike")
    ax.vlines(t[x[:, 1] > 0], 0, 1, color="C3", lw=2, label="reset spike")
    ax.plot(t, x[:, 2], color="0.7", lw=0.8, label="noise input")
    ax.step(t, y, "k", where="mid", lw=1.5, label="target bit")
    ax.plot(t, pred, "C0--", lw=1.5, label="prediction")
    ax.set_ylabel("inputs,\noutput")
    ax.set_ylim(-0.05, 1.1)
    ax.legend(
        ncol=5, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, 1.32)
    )
    for ax, (key, title, cmap, lim) in zip(axes[1:], rows):
        values = rec[key].T  # (units, steps)
        if lim is None:
            m = float(np.abs(values).max()) or 1.0
            lim = (-m, m)
        im = ax.imshow(
            values,
            aspect="auto",
            cmap=cmap,
            vmin=lim[0],
            vmax=lim[1],
            interpolation="nearest",
            extent=(-0.5, STEPS - 0.5, UNITS - 0.5, -0.5),
        )
        ax.set_ylabel(f"{title}\nunit")
        ax.set_yticks(range(UNITS))
        fig.colorbar(im, ax=ax, pad=0.01, fraction=0.03)
    axes[-1].set_xlabel("time step")
    fig.suptitle(
        "krp.LSTM gates and states on a held-out flip-flop "
        "sequence (NumPy replay)",
        y=0.995,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def plot_memory_unit(x, y, rec, unit, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(9, 5.5), sharex=True)
    t = np.arange(STEPS)
    for ax in (ax1, ax2):
        for k, color in ((0, "C2"), (1, "C3")):
            for s in t[x[:, k] > 0]:
                ax.axvline(s, color=color, alpha=0.35, lw=3)
    ax1.plot(t, rec["i"][:, unit], label="input gate i")
    ax1.plot(t, rec["f"][:, unit], label="forget gate f")
    ax1.plot(t, rec["o"][:, unit], label="output gate o")
    ax1.set_ylabel("gate value")
    ax1.set_ylim(-0.02, 1.02)
    ax1.set_title(
        f"unit {unit} (the cell state most correlated with the "
        "bit); green: set, red: reset"
    )
    ax1.legend(fontsize=8, ncol=3, loc="lower left")
    ax2.plot(t, rec["g"][:, unit], color="C4", label="candidate g")
    ax2.plot(t, rec["c"][:, unit], color="k", lw=2, label="cell state c")
    ax2.plot(t, rec["h"][:, unit], color="C1", label="output h")
    ax2.step(t, y, "k:", where="mid", label="target bit")
    ax2.set_xlabel("time step")
    ax2.set_ylabel("value")
    ax2.legend(fontsize=8, ncol=4, loc="upper center",
               bbox_to_anchor=(0.5, -0.18))
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main(argv=None):
    args = parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # progress shows when piped
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    start = time.time()
    keras.utils.set_random_seed(args.seed)
    n_train, epochs = (512, 2) if args.quick else (6400, 12)
    checks = Checks()

    # -- 1. train ----------------------------------------------------------
    x_train, y_train = make_data(n_train, args.seed)
    x_test, y_test = make_data(256, args.seed + 1)
    inputs = keras.Input((STEPS, 3))
    lstm = krp.LSTM(UNITS, return_sequences=True, return_state=True)
    seq, _, c_last = lstm(inputs)
    head = keras.layers.Dense(1, activation="sigmoid")
    model = keras.Model(inputs, head(seq))
    model.compile(
        optimizer=keras.optimizers.Adam(2e-2),
        loss="binary_crossentropy",
        metrics=["binary_accuracy"],
    )
    history = model.fit(
        x_train,
        y_train,
        batch_size=64,
        epochs=epochs,
        validation_data=(x_test, y_test),
        verbose=2,
    ).history["loss"]
    pred = model.predict(x_test, verbose=0)
    accuracy = float(np.mean((pred > 0.5) == (y_test > 0.5)))
    majority = float(max(y_test.mean(), 1 - y_test.mean()))
    print(
        f"held-out per-step accuracy {accuracy:.4f} (always the "
        f"majority bit: {majority:.4f})"
    )
    if args.quick:  # a few steps of training: the loss went down
        ok = history[-1] < history[0]
        what = (f"training loss {history[0]:.3f} -> {history[-1]:.3f} "
                f"(accuracy {accuracy:.3f}, checked in full runs)")
    else:
        ok, what = accuracy >= 0.98, f"accuracy {accuracy:.4f} >= 0.98"
    checks("training", ok, what)

    # -- 2. replay in NumPy ------------------------------------------------
    kernel, recurrent_kernel, bias = (
        np.asarray(w, "float64") for w in lstm.get_weights()
    )
    print(
        f"weights: kernel {kernel.shape}, recurrent_kernel "
        f"{recurrent_kernel.shape}, bias {bias.shape} (gates i, f, c, o)"
    )
    rec = replay(kernel, recurrent_kernel, bias, x_test.astype("float64"))

    # -- 3. the replay is the layer ----------------------------------------
    probe = keras.Model(inputs, [seq, c_last])
    h_layer, c_layer = (np.asarray(v) for v in probe.predict(x_test, verbose=0))
    dense_w, dense_b = (np.asarray(w, "float64") for w in head.get_weights())
    pred_replay = sigmoid(rec["h"] @ dense_w + dense_b)
    diffs = dict(
        h=float(np.max(np.abs(rec["h"] - h_layer))),
        c_final=float(np.max(np.abs(rec["c"][:, -1] - c_layer))),
        prediction=float(np.max(np.abs(pred_replay - pred))),
    )
    checks(
        "replay",
        max(diffs.values()) <= REPLAY_ATOL,
        "NumPy replay vs the layer, max abs diff: "
        + ", ".join(f"{k} {v:.2e}" for k, v in diffs.items())
        + f" <= {REPLAY_ATOL:g}",
    )

    # -- 4. what the units do ----------------------------------------------
    c_all = rec["c"].reshape(-1, UNITS)
    bit = y_test.reshape(-1)
    corr = [
        float(np.corrcoef(c_all[:, u], bit)[0, 1])
        if c_all[:, u].std() > 0
        else 0.0
        for u in range(UNITS)
    ]
    unit = int(np.argmax(np.abs(corr)))
    print(
        "correlation of each unit's cell state with the bit: "
        + ", ".join(f"{u}: {r:+.2f}" for u, r in enumerate(corr))
    )
    spikes = x_test[..., 0] + x_test[..., 1] > 0
    gate_stats = {}
    for gate in "ifo":
        values = rec[gate][..., unit]
        gate_stats[gate] = dict(
            at_spikes=float(values[spikes].mean()),
            elsewhere=float(values[~spikes].mean()),
        )
    print(
        f"unit {unit}: mean gate values at set/reset spikes vs elsewhere: "
        + ", ".join(
            f"{g} {s['at_spikes']:.2f} vs {s['elsewhere']:.2f}"
            for g, s in gate_stats.items()
        )
    )

    # the example: the held-out sequence with the most spikes
    k = int(np.argmax(spikes.sum(axis=1)))
    example = {key: v[k] for key, v in rec.items()}
    heat_path = out / "gates.png"
    plot_heatmaps(x_test[k], y_test[k, :, 0], pred[k, :, 0], example, heat_path)
    print(f"wrote {heat_path}")
    unit_path = out / "memory_unit.png"
    plot_memory_unit(x_test[k], y_test[k, :, 0], example, unit, unit_path)
    print(f"wrote {unit_path}")
    summary = dict(
        quick=args.quick,
        units=UNITS,
        steps=STEPS,
        train_sequences=n_train,
        epochs=epochs,
        accuracy=accuracy,
        majority_baseline=majority,
        replay_max_abs_diff=diffs,
        cell_bit_correlation=corr,
        memory_unit=unit,
        memory_unit_gates=gate_stats,
        checks=checks.results,
        seconds=round(time.time() - start, 1),
    )
    return finish(out, summary, checks, start)


if __name__ == "__main__":
    sys.exit(main())
