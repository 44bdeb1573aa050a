"""Tutorial 5: peephole connections for timing (after Gers, Schraudolph
& Schmidhuber 2002).

Gers et al. added peephole connections (the gates see the cell state)
so that an LSTM could learn precise timing: their tasks measured the
delay between two spikes and emitted spikes at precise intervals. This
script compares `krp.LSTM` with `krp.PeepholeLSTM` on a task that does
both: "ready, set, go" interval reproduction (the task of Jazayeri &
Shadlen 2010).

The input is one channel of zeros with two spikes, "ready" at `t1` and
"set" at `t2 = t1 + d`; the target is zero except for one spike, "go", at
`t3 = t2 + d`: the network must measure the interval `d` (between
`D_MIN` and `D_MAX` steps) and reproduce it. The predicted go time is the
step after `t2` with the largest output; the timing error is its
distance from `t3`, in steps.

Both models have the same number of units, the same data, the same
optimizer and the same number of training steps, over a few seeds. Both
use `recurrent_activation="sigmoid"` (PeepholeLSTM defaults to Keras 2's
hard sigmoid) and `implementation=2` (PeepholeLSTM defaults to 1; the two
give the same numbers), so the only difference is the peepholes: three
vectors of `units` weights. With the same seed, both models start from
the same `kernel`, `recurrent_kernel`, `bias` and output layer.

The task has only 66 distinct trials (6 "ready" times by 11
intervals), so the 1000 test trials, drawn apart from the training ones,
repeat trials that training also saw: the test measures how precisely a
model learned the task, not how it generalises to new trials.

The script prints the test timing error of each run and a final
table, and writes the learning curves, the timing errors and example
output traces (PNG) and a summary (JSON). The comparison is reported as
it comes out, whichever model wins. Every check prints
`CHECK <name>: PASS` or `FAIL`; the script exits with status 1 if any
check fails.

    python tutorials/05_peephole_timing.py          # ~3 min, 2 CPU cores
    python tutorials/05_peephole_timing.py --quick  # a few seconds
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
DEFAULT_OUT = HERE / "output" / "05_peephole_timing"

D_MIN, D_MAX = 5, 15  # the interval to reproduce, in steps
T1_MAX = 5  # "ready" comes at 0..T1_MAX
STEPS = T1_MAX + 2 * D_MAX + 4  # sequence length
UNITS = 16
MODELS = ("LSTM", "PeepholeLSTM")
PRECISE = 0.5  # "precise": test mean |timing error| below this


def parse_args(argv=None):
    parser = _common.parser(
        __doc__, DEFAULT_OUT, "1 seed, 2 short epochs (for the tests)"
    )
    parser.add_argument(
        "--seeds",
        type=int,
        default=None,
        help="number of seeds (default: 1 quick, 5 full)",
    )
    return parser.parse_args(argv)


def make_data(n, seed):
    """Inputs `(n, STEPS, 1)`, targets `(n, STEPS, 1)` and the times
    `t2`, `t3` of the set and go spikes."""
    rs = np.random.RandomState(seed)
    t1 = rs.randint(0, T1_MAX + 1, n)
    d = rs.randint(D_MIN, D_MAX + 1, n)
    t2, t3 = t1 + d, t1 + 2 * d
    rows = np.arange(n)
    x = np.zeros((n, STEPS, 1), "float32")
    y = np.zeros((n, STEPS, 1), "float32")
    x[rows, t1, 0] = 1.0
    x[rows, t2, 0] = 1.0
    y[rows, t3, 0] = 1.0
    return x, y, t2, t3


def timing_errors(pred, t2, t3):
    """|predicted go time - t3|: the prediction is the step after t2 with
    the largest output."""
    out = pred[..., 0].copy()
    out[np.arange(STEPS)[None, :] <= t2[:, None]] = -np.inf
    return np.abs(out.argmax(axis=1) - t3)


def precise_at(errors):
    """The first epoch (1-based) after which the test mean timing
    error was below `PRECISE` steps, or None."""
    for epoch, error in enumerate(errors):
        if error < PRECISE:
            return epoch + 1
    return None


def make_model(kind):
    if kind == "LSTM":
        rnn = krp.LSTM(UNITS, return_sequences=True)
    else:
        rnn = krp.PeepholeLSTM(
            UNITS,
            recurrent_activation="sigmoid",
            implementation=2,
            return_sequences=True,
        )
    model = keras.Sequential(
        [
            keras.Input((STEPS, 1)),
            rnn,
            keras.layers.Dense(1, activation="sigmoid"),
        ],
        name=kind,
    )
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2), loss="binary_crossentropy"
    )
    return model


class TimingError(keras.callbacks.Callback):
    """Test mean timing error and validation loss after each epoch."""

    def __init__(self, x, y, t2, t3):
        super().__init__()
        self.data = (x, y, t2, t3)
        self.errors, self.val_loss = [], []

    def on_epoch_end(self, epoch, logs=None):
        x, y, t2, t3 = self.data
        pred = self.model.predict(x, verbose=0)
        self.errors.append(float(timing_errors(pred, t2, t3).mean()))
        eps = 1e-7
        p = np.clip(pred, eps, 1 - eps)
        bce = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
        self.val_loss.append(float(bce))


def plot(runs, errors, traces, baseline, steps_per_epoch, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    colors = dict(zip(MODELS, ("C0", "C3")))
    for kind in MODELS:
        curves = np.array([r["errors"] for r in runs[kind]])
        epochs = np.arange(1, curves.shape[1] + 1)
        for k, curve in enumerate(curves):
            axes[0].plot(
                epochs,
                curve,
                "-",
                lw=0.8,
                alpha=0.45,
                color=colors[kind],
                label=f"{kind}, each seed" if k == 0 else None,
            )
        axes[0].plot(
            epochs,
            np.median(curves, axis=0),
            "o-",
            lw=2,
            ms=4,
            color=colors[kind],
            label=f"{kind}, median of {len(curves)} seeds",
        )
    axes[0].axhline(
        baseline, color="gray", ls="--", label="guess: go at t2 + mean interval"
    )
    axes[0].set_yscale("symlog", linthresh=0.1)
    axes[0].set_ylim(0, None)
    axes[0].xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    axes[0].set_xlabel(f"epoch ({steps_per_epoch} steps)")
    axes[0].set_ylabel("mean |timing error| (steps)")
    axes[0].set_title("test timing error")
    axes[0].legend(fontsize=8)
    axes[0].grid(alpha=0.3)

    bins = (
        np.arange(0, max(int(max(e.max() for e in errors.values())), 3) + 2)
        - 0.5
    )
    axes[1].hist(
        [errors[k] for k in MODELS],
        bins=bins,
        color=[colors[k] for k in MODELS],
        label=list(MODELS),
    )
    axes[1].set_xticks(range(int(bins[-1] + 0.5)))
    axes[1].set_xlabel("|timing error| (steps)")
    axes[1].set_ylabel("test sequences (all seeds)")
    axes[1].set_title("final timing errors")
    axes[1].legend()

    x, y, preds = traces
    t = np.arange(STEPS)
    for k, offset in zip(range(len(x)), (0.0, 1.3)):
        label = k == 0
        axes[2].plot(
            t,
            x[k, :, 0] + offset,
            color="black",
            lw=1,
            label="input: ready, set" if label else None,
        )
        axes[2].plot(
            t,
            y[k, :, 0] + offset,
            "k:",
            lw=1.5,
            label="target: go" if label else None,
        )
        for kind in MODELS:
            axes[2].plot(
                t,
                preds[kind][k, :, 0] + offset,
                color=colors[kind],
                label=kind if label else None,
            )
    axes[2].set_xlabel("time step")
    axes[2].set_ylabel("output (two test sequences, offset)")
    axes[2].set_title("example outputs (seed 0)")
    axes[2].legend(fontsize=8, loc="upper left")
    fig.suptitle(
        f"ready-set-go interval reproduction, {UNITS} units: "
        "krp.LSTM vs krp.PeepholeLSTM (sigmoid gates)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv=None):
    args = parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # progress shows when piped
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    start = time.time()
    if args.quick:
        seeds, n_train, epochs, steps = 1, 640, 2, 10
    else:
        seeds, n_train, epochs, steps = 5, 6400, 15, 100
    seeds = args.seeds or seeds
    checks = Checks()

    x_train, y_train, _, _ = make_data(n_train, seed=1000)
    x_test, y_test, t2_test, t3_test = make_data(1000, seed=2000)
    mean_d = (D_MIN + D_MAX) / 2
    baseline = float(np.mean(np.abs(np.round(t2_test + mean_d) - t3_test)))
    print(
        f"intervals {D_MIN}-{D_MAX} steps, sequences of {STEPS} steps; "
        f"{n_train} training and 1000 test sequences (of 66 distinct "
        f"trials); guessing "
        f"t2 + {mean_d:g} is off by {baseline:.2f} steps on average"
    )

    # -- train every model with every seed ---------------------------------
    runs = {kind: [] for kind in MODELS}
    final_errors = {kind: [] for kind in MODELS}
    traces_pred = {}
    for seed in range(seeds):
        for kind in MODELS:
            keras.utils.set_random_seed(seed)
            model = make_model(kind)
            callback = TimingError(x_test, y_test, t2_test, t3_test)
            t0 = time.time()
            fit = model.fit(
                x_train,
                y_train,
                batch_size=64,
                epochs=epochs,
                steps_per_epoch=steps,
                callbacks=[callback],
                verbose=0,
            )
            pred = model.predict(x_test, verbose=0)
            err = timing_errors(pred, t2_test, t3_test)
            final_errors[kind].append(err)
            runs[kind].append(
                dict(
                    seed=seed,
                    loss=[float(v) for v in fit.history["loss"]],
                    val_loss=callback.val_loss,
                    errors=callback.errors,
                    final_mean_error=float(err.mean()),
                    exact=float(np.mean(err == 0)),
                    precise_at=precise_at(callback.errors),
                    within_1=float(np.mean(err <= 1)),
                    weights=model.count_params(),
                    seconds=round(time.time() - t0, 1),
                )
            )
            if seed == 0:
                traces_pred[kind] = pred[:2]
            r = runs[kind][-1]
            print(
                f"seed {seed} {kind:>12}: mean |timing error| "
                f"{r['final_mean_error']:.3f} steps, exact "
                f"{r['exact']:.1%}, within 1 step {r['within_1']:.1%}, "
                f"first below {PRECISE} steps after epoch {r['precise_at']} "
                f"({r['seconds']:.0f} s)"
            )

    # -- the comparison ----------------------------------------------------
    table = {}
    print(
        f"\n{'model':>12}  {'weights':>7}  {'mean |err|':>10}  "
        f"{'exact':>6}  {'<= 1':>6}  {'s/run':>5}  per seed: |err|, "
        f"first epoch < {PRECISE}"
    )
    for kind in MODELS:
        per_seed = [r["final_mean_error"] for r in runs[kind]]
        table[kind] = dict(
            weights=runs[kind][0]["weights"],
            mean_error=float(np.mean(per_seed)),
            per_seed=per_seed,
            precise_at=[r["precise_at"] for r in runs[kind]],
            exact=float(np.mean([r["exact"] for r in runs[kind]])),
            within_1=float(np.mean([r["within_1"] for r in runs[kind]])),
            seconds=float(np.mean([r["seconds"] for r in runs[kind]])),
        )
        row = table[kind]
        print(
            f"{kind:>12}  {row['weights']:>7}  {row['mean_error']:>10.3f}"
            f"  {row['exact']:>6.1%}  {row['within_1']:>6.1%}"
            f"  {row['seconds']:>5.1f}  "
            + "  ".join(
                f"{e:.3f}, {'never' if k is None else k}"
                for e, k in zip(per_seed, row["precise_at"])
            )
        )
    plain, peep = (
        table["LSTM"]["mean_error"],
        table["PeepholeLSTM"]["mean_error"],
    )
    # seed by seed (same seed: same initial kernels, same batches)
    pairs = [
        (a["final_mean_error"], b["final_mean_error"])
        for a, b in zip(runs["PeepholeLSTM"], runs["LSTM"])
    ]
    wins = sum(a < b for a, b in pairs)
    worse = sum(a > b for a, b in pairs)
    ties = seeds - wins - worse
    if wins and not worse:
        verdict = ("PeepholeLSTM is more precise" if wins == seeds else
                   "PeepholeLSTM is never less precise")
    elif worse and not wins:
        verdict = ("plain LSTM is more precise" if worse == seeds else
                   "plain LSTM is never less precise")
    else:
        verdict = "no consistent winner"
    print(
        f"verdict: {verdict}: peepholes better on {wins}, worse on "
        f"{worse}, tied on {ties} of {seeds} seeds; mean |timing error| "
        f"{peep:.3f} (peepholes) vs {plain:.3f} (plain)"
    )

    for kind in MODELS:
        curves = [r["loss"] for r in runs[kind]]
        went_down = all(v[-1] < v[0] for v in curves)
        if args.quick:  # two tiny epochs: the loss went down
            ok, what = went_down, "training loss went down for every seed"
        else:  # trained: most seeds beat guessing the mean interval (a
            # seed may lose its precision late in training, see the table)
            median = float(np.median(table[kind]["per_seed"]))
            ok = went_down and median < baseline / 2
            what = (
                f"median over seeds of the mean |timing error| "
                f"{median:.3f} < half the guess {baseline / 2:.3f}"
            )
        checks(f"learns_{kind}", ok, what)

    # -- plot and summary --------------------------------------------------
    plot_path = out / "timing.png"
    errors = {k: np.concatenate(v) for k, v in final_errors.items()}
    traces = (x_test[:2], y_test[:2], traces_pred)
    plot(runs, errors, traces, baseline, steps, plot_path)
    print(f"wrote {plot_path}")
    summary = dict(
        quick=args.quick,
        task=dict(d_min=D_MIN, d_max=D_MAX, steps=STEPS, units=UNITS),
        seeds=seeds,
        train_sequences=n_train,
        epochs=epochs,
        steps_per_epoch=steps,
        baseline_mean_error=baseline,
        table=table,
        verdict=verdict,
        peepholes_better_worse_tied=[wins, worse, ties],
        runs=runs,
        checks=checks.results,
        seconds=round(time.time() - start, 1),
    )
    return finish(out, summary, checks, start)


if __name__ == "__main__":
    sys.exit(main())
