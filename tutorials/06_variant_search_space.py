"""Tutorial 6: the LSTM variant search space (after Greff et al. 2015,
"LSTM: A Search Space Odyssey").

Greff et al. trained the "vanilla" LSTM (with peepholes) and eight
variants, each with one piece removed or changed, on several tasks, and
found that none beat the vanilla LSTM clearly, while removing the forget
gate or the output activation hurt. This script runs a small comparison
in that spirit on one task with `krp.LSTM`'s keyword-only variant
arguments and `krp.GRU`. Its baseline "LSTM" has no peepholes (Greff et
al.'s NP variant; "peepholes" below is their vanilla LSTM); of the
others, CIFG and no forget gate are among Greff et al.'s variants, while
GRU, projection, layer norm, the forget bias and the cell clip are not:

| name             | layer                                                 |
|------------------|-------------------------------------------------------|
| LSTM             | `krp.LSTM(units)`                                     |
| GRU              | `krp.GRU(units)`                                      |
| peepholes        | `krp.LSTM(units, use_peepholes=True)`                 |
| CIFG             | `krp.LSTM(units, coupled_input_forget=True)`          |
| no forget gate   | `krp.LSTM(units, use_forget_gate=False)`              |
| projection       | `krp.LSTM(units, num_proj=units // 2)`                |
| layer norm       | `krp.LSTM(units, layer_norm=True)`                    |
| forget bias +1   | `krp.LSTM(units, forget_bias=1.0)`                    |
| cell clip 1      | `krp.LSTM(units, cell_clip=1.0)`                      |

The task is the adding problem (Hochreiter & Schmidhuber 1997) in the
simpler form of later benchmarks (Le et al. 2015, Arjovsky et al. 2016;
the 1997 version used numbers in [-1, 1], the first marker within the
first 10 steps and the target 0.5 + (X1 + X2) / 4): a sequence of
`STEPS` random numbers in [0, 1], with two of them marked (one in each
half); the target is the sum of the two marked numbers.
Predicting the mean, 1.0, gives a mean squared error of 1/6 ~ 0.167.

Every model has the same units, optimizer, batches (fresh random
sequences at every step) and number of steps, over a few seeds. The
script prints a table of the final held-out MSE (mean, spread), plots the
loss curves side by side (mean and min-max band over seeds) and writes a
summary (JSON). Every check prints `CHECK <name>: PASS` or `FAIL`; the
script exits with status 1 if any check fails.

    python tutorials/06_variant_search_space.py          # ~2.5 min, 2 CPU cores
    python tutorials/06_variant_search_space.py --quick  # a few seconds
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
DEFAULT_OUT = HERE / "output" / "06_variant_search_space"

UNITS = 24
BATCH = 64
MEAN_BASELINE = 1.0 / 6.0  # MSE of always predicting 1.0
SOLVED = 0.01  # "solved": training MSE below this

VARIANTS = {
    "LSTM": lambda: krp.LSTM(UNITS),
    "GRU": lambda: krp.GRU(UNITS),
    "peepholes": lambda: krp.LSTM(UNITS, use_peepholes=True),
    "CIFG": lambda: krp.LSTM(UNITS, coupled_input_forget=True),
    "no forget gate": lambda: krp.LSTM(UNITS, use_forget_gate=False),
    "projection": lambda: krp.LSTM(UNITS, num_proj=UNITS // 2),
    "layer norm": lambda: krp.LSTM(UNITS, layer_norm=True),
    "forget bias +1": lambda: krp.LSTM(UNITS, forget_bias=1.0),
    "cell clip 1": lambda: krp.LSTM(UNITS, cell_clip=1.0),
}


def parse_args(argv=None):
    parser = _common.parser(
        __doc__,
        DEFAULT_OUT,
        "short sequences, 1 seed, a few steps (for the tests)",
    )
    parser.add_argument(
        "--seeds",
        type=int,
        default=None,
        help="number of seeds (default: 1 quick, 3 full)",
    )
    return parser.parse_args(argv)


def adding_problem(n, steps, seed):
    """Inputs `(n, steps, 2)`: the numbers and the two markers; targets
    `(n, 1)`: the sum of the marked numbers."""
    rs = np.random.RandomState(seed)
    values = rs.rand(n, steps)
    first = rs.randint(0, steps // 2, n)
    second = rs.randint(steps // 2, steps, n)
    markers = np.zeros((n, steps))
    rows = np.arange(n)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    x = np.stack([values, markers], axis=-1).astype("float32")
    y = (values[rows, first] + values[rows, second])[:, None]
    return x, y.astype("float32")


def solved_at(curve, steps_per_epoch):
    """The training step at the end of the first epoch whose mean training
    MSE was below `SOLVED`, or None."""
    for epoch, loss in enumerate(curve):
        if loss < SOLVED:
            return (epoch + 1) * steps_per_epoch
    return None


def make_model(name, steps, run_eagerly=False):
    model = keras.Sequential(
        [keras.Input((steps, 2)), VARIANTS[name](), keras.layers.Dense(1)],
        name=name.replace(" ", "_").replace("+", "plus"),
    )
    # run_eagerly (quick mode): a few tiny steps cost less than tracing
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss="mse",
        run_eagerly=run_eagerly,
    )
    return model


def plot(curves, table, steps_per_epoch, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(curves)
    cols = 3
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(12, 2.6 * rows + 0.9), sharex=True, sharey=True
    )
    axes = np.atleast_1d(axes).ravel()
    reference = np.array(curves["LSTM"])
    for ax, name in zip(axes, names):
        c = np.array(curves[name])
        x = np.arange(1, c.shape[1] + 1) * steps_per_epoch
        ax.plot(
            x,
            reference.mean(axis=0),
            color="0.55",
            lw=1.2,
            label="plain krp.LSTM (mean over seeds)",
        )
        ax.plot(
            x,
            c.mean(axis=0),
            color="C3",
            lw=1.8,
            label="this model (mean over seeds)",
        )
        ax.fill_between(
            x,
            c.min(axis=0),
            c.max(axis=0),
            color="C3",
            alpha=0.2,
            label="this model (min-max over seeds)",
        )
        ax.axhline(
            MEAN_BASELINE, color="k", ls=":", lw=1, label="always predict 1.0"
        )
        ax.set_yscale("log")
        r = table[name]
        ax.set_title(
            f"{name}: held-out MSE {r['mean']:.4f} (sd {r['std']:.4f})",
            fontsize=10,
        )
        ax.grid(alpha=0.3)
    for ax in axes[len(names) :]:
        ax.axis("off")
    for ax in axes[(rows - 1) * cols :]:
        ax.set_xlabel("training step")
    for ax in axes[::cols]:
        ax.set_ylabel("training MSE\n(fresh batches)")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=9)
    fig.suptitle(
        "LSTM variants and GRU on the adding problem "
        f"({UNITS} units, {reference.shape[0]} seeds, "
        "same budget)"
    )
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    fig.savefig(path, dpi=80)
    plt.close(fig)


def plot_table(table, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted(table, key=lambda n: table[n]["mean"], reverse=True)
    mean = np.array([table[n]["mean"] for n in names])
    low = mean - np.array([table[n]["min"] for n in names])
    high = np.array([table[n]["max"] for n in names]) - mean
    fig, ax = plt.subplots(figsize=(7, 4))
    colors = ["C0" if n == "LSTM" else "C3" for n in names]
    ax.barh(names, mean, xerr=[low, high], color=colors, alpha=0.8, capsize=3)
    ax.axvline(MEAN_BASELINE, color="k", ls=":", label="always predict 1.0")
    ax.set_xscale("log")
    ax.set_xlabel(
        "final held-out MSE (bar: mean, whiskers: min-max over seeds)"
    )
    ax.set_title("adding problem: final loss of each variant")
    ax.legend(loc="upper right", fontsize=8)
    ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main(argv=None):
    args = parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # progress shows when piped
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    start = time.time()
    if args.quick:
        seeds, steps, epochs, steps_per_epoch, n_test = 1, 8, 2, 2, 200
    else:
        seeds, steps, epochs, steps_per_epoch, n_test = 3, 40, 24, 25, 1000
    seeds = args.seeds or seeds
    checks = Checks()
    x_test, y_test = adding_problem(n_test, steps, seed=10_000)
    n_train = epochs * steps_per_epoch * BATCH
    print(
        f"adding problem, sequences of {steps} steps; {len(VARIANTS)} "
        f"models x {seeds} seeds, {epochs * steps_per_epoch} steps of "
        f"{BATCH} fresh sequences each"
    )

    curves = {name: [] for name in VARIANTS}
    finals = {name: [] for name in VARIANTS}
    seconds = {name: [] for name in VARIANTS}
    weights = {}
    for seed in range(seeds):
        # the same training sequences for every model of this seed
        x_train, y_train = adding_problem(n_train, steps, seed=seed)
        for name in VARIANTS:
            keras.utils.set_random_seed(seed)
            t0 = time.time()
            model = make_model(name, steps, run_eagerly=args.quick)
            fit = model.fit(
                x_train,
                y_train,
                batch_size=BATCH,
                epochs=epochs,
                steps_per_epoch=steps_per_epoch,
                shuffle=False,
                verbose=0,
            )
            pred = np.asarray(model(x_test))
            test_mse = float(np.mean((pred - y_test) ** 2))
            curves[name].append([float(v) for v in fit.history["loss"]])
            finals[name].append(test_mse)
            seconds[name].append(time.time() - t0)
            weights[name] = model.count_params()
            print(
                f"seed {seed} {name:>15}: held-out MSE {test_mse:.4f} "
                f"({seconds[name][-1]:.1f} s)"
            )

    # -- the table ---------------------------------------------------------
    table = {}
    for name in VARIANTS:
        v = np.array(finals[name])
        table[name] = dict(
            solved_at=[solved_at(c, steps_per_epoch) for c in curves[name]],
            mean=float(v.mean()),
            std=float(v.std()),
            min=float(v.min()),
            max=float(v.max()),
            per_seed=[float(e) for e in v],
            weights=weights[name],
            seconds=float(np.mean(seconds[name])),
        )
    print(
        f"\nfinal held-out MSE (predicting 1.0: {MEAN_BASELINE:.4f}), "
        "best first:"
    )
    print(
        f"{'model':>15}  {'weights':>7}  {'mean':>7}  {'std':>7}  "
        f"{'min':>7}  {'max':>7}  {'s/run':>5}  MSE < {SOLVED:g} at step"
    )
    for name in sorted(table, key=lambda n: table[n]["mean"]):
        r = table[name]
        print(
            f"{name:>15}  {r['weights']:>7}  {r['mean']:>7.4f}  "
            f"{r['std']:>7.4f}  {r['min']:>7.4f}  {r['max']:>7.4f}  "
            f"{r['seconds']:>5.1f}  "
            + ", ".join(
                "never" if k is None else str(k) for k in r["solved_at"]
            )
        )

    finite = all(np.isfinite(v).all() for v in finals.values())
    if args.quick:  # a few steps: every model trains and gives numbers
        ok, what = finite, "every variant trained, finite losses"
    else:  # trained: the plain LSTM solved the task, most models learned
        learned = [n for n in table if table[n]["mean"] < MEAN_BASELINE / 2]
        ok = (
            finite
            and table["LSTM"]["mean"] < 0.02
            and len(learned) >= (len(table) // 2)
        )
        what = (
            f"LSTM {table['LSTM']['mean']:.4f} < 0.02; "
            f"{len(learned)}/{len(table)} models < half the baseline"
        )
    checks("training", ok, what)

    plot_path = out / "variants.png"
    plot(curves, table, steps_per_epoch, plot_path)
    print(f"wrote {plot_path}")
    table_path = out / "final_mse.png"
    plot_table(table, table_path)
    print(f"wrote {table_path}")
    summary = dict(
        quick=args.quick,
        sequence_steps=steps,
        units=UNITS,
        seeds=seeds,
        training_steps=epochs * steps_per_epoch,
        batch_size=BATCH,
        mean_baseline=MEAN_BASELINE,
        table=table,
        curves=curves,
        checks=checks.results,
        seconds=round(time.time() - start, 1),
    )
    return finish(out, summary, checks, start)


if __name__ == "__main__":
    sys.exit(main())
