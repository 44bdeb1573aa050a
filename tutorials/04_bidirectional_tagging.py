"""Tutorial 4: sequence tagging with `keras.layers.Bidirectional(krp.LSTM)`
on variable-length, padded sequences.

The task: tag every token of a sequence such as `a b ( c d ) e ( f g`
with 1 if the nearest bracket to its left is `(` and the nearest bracket
to its right is `)` (it lies inside a closed pair with no bracket in
between), and 0 otherwise; here `c` and `d` are tagged 1, `f` and `g` are
not (their `(` is never closed). The tag depends on the past and on the
future. A left-to-right LSTM that has just read `( f` cannot know yet
whether a `)` follows; a bidirectional one reads the sequence from both
ends. The script

1. generates sequences of 8 to `MAX_LEN` tokens, right-padded with 0;
   `Embedding(mask_zero=True)` turns the padding into a mask that the
   LSTMs, `Bidirectional` and the loss all respect;
2. trains a unidirectional `krp.LSTM` (64 units) and a
   `Bidirectional(krp.LSTM)` (32 units each way, fewer weights in all),
   with the same budget;
3. reports the token accuracy on held-out sequences, padding excluded,
   overall and on the tokens a left-to-right reader cannot decide (the
   nearest bracket to their left is `(`);
4. checks that padding changes nothing: each sequence tagged on its own,
   unpadded, gets the tags it gets inside the padded batch;
5. writes accuracy curves and an example (PNG) and a summary (JSON).

Every check prints `CHECK <name>: PASS` or `FAIL`; the script exits with
status 1 if any check fails.

    python tutorials/04_bidirectional_tagging.py          # ~30 s, 2 CPU cores
    python tutorials/04_bidirectional_tagging.py --quick  # a few seconds
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
DEFAULT_OUT = HERE / "output" / "04_bidirectional_tagging"

MIN_LEN, MAX_LEN = 8, 40
WORDS = "abcdefgh"  # tokens 1..8
OPEN, CLOSE = 9, 10
VOCAB = 11  # 0 is the padding
BRACKET_P = 0.2  # probability that a token is a bracket
P_CLOSE = 0.8  # probability that the bracket after a `(` is a `)`
P_OPEN = 0.8  # probability that the bracket after a `)` is a `(`
SYMBOLS = "." + WORDS + "()"
MASK_ATOL = 1e-5


def parse_args(argv=None):
    parser = _common.parser(
        __doc__, DEFAULT_OUT, "small data, 2 epochs (for the tests)"
    )
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def tags_of(seq):
    """1 where the nearest bracket on the left is `(` and the nearest on
    the right is `)`; 0 elsewhere (brackets included). Also returns where
    a left-to-right reader cannot decide: the nearest bracket on the left
    is `(`."""
    n = len(seq)
    left = np.zeros(n, "int32")  # nearest bracket before i (0: none)
    right = np.zeros(n, "int32")  # nearest bracket after i
    last = 0
    for i in range(n):
        left[i] = last
        if seq[i] in (OPEN, CLOSE):
            last = seq[i]
    last = 0
    for i in reversed(range(n)):
        right[i] = last
        if seq[i] in (OPEN, CLOSE):
            last = seq[i]
    word = ~np.isin(seq, (OPEN, CLOSE))
    tags = word & (left == OPEN) & (right == CLOSE)
    return tags.astype("int32"), word & (left == OPEN)


def make_data(n, seed):
    """`x` `(n, MAX_LEN)` right-padded with 0, tags `y` `(n, MAX_LEN, 1)`,
    and the `ambiguous` positions `(n, MAX_LEN)` (see `tags_of`)."""
    rs = np.random.RandomState(seed)
    x = np.zeros((n, MAX_LEN), "int32")
    y = np.zeros((n, MAX_LEN, 1), "int32")
    ambiguous = np.zeros((n, MAX_LEN), bool)
    for k in range(n):
        length = rs.randint(MIN_LEN, MAX_LEN + 1)
        seq = rs.randint(1, len(WORDS) + 1, length)
        last = CLOSE
        for i in np.flatnonzero(rs.rand(length) < BRACKET_P):
            # mostly alternating brackets: most `(` get closed
            if last == OPEN:
                last = CLOSE if rs.rand() < P_CLOSE else OPEN
            else:
                last = OPEN if rs.rand() < P_OPEN else CLOSE
            seq[i] = last
        x[k, :length] = seq
        y[k, :length, 0], ambiguous[k, :length] = tags_of(seq)
    return x, y, ambiguous


def show(seq):
    return " ".join(SYMBOLS[t] for t in seq if t)


def make_model(bidirectional):
    tokens = keras.Input((None,), dtype="int32", name="tokens")
    x = keras.layers.Embedding(VOCAB, 16, mask_zero=True)(tokens)
    if bidirectional:
        x = keras.layers.Bidirectional(krp.LSTM(32, return_sequences=True))(x)
        name = "bidirectional"
    else:
        x = krp.LSTM(64, return_sequences=True)(x)
        name = "unidirectional"
    tag = keras.layers.Dense(1, activation="sigmoid", name="tag")(x)
    model = keras.Model(tokens, tag, name=name)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss="binary_crossentropy",
    )
    return model


def token_accuracy(model, x, y, ambiguous):
    """Accuracy over the real tokens (padding excluded), and over the
    tokens a left-to-right reader cannot decide."""
    pred = (model.predict(x, verbose=0)[..., 0] > 0.5).astype("int32")
    right = pred == y[..., 0]
    real = x != 0
    return float(right[real].mean()), float(right[ambiguous].mean())


class MaskedAccuracy(keras.callbacks.Callback):
    """Held-out token accuracy (padding excluded) after each epoch."""

    def __init__(self, x, y, ambiguous):
        super().__init__()
        self.data = (x, y, ambiguous)
        self.all, self.ambiguous = [], []

    def on_epoch_end(self, epoch, logs=None):
        acc, amb = token_accuracy(self.model, *self.data)
        self.all.append(acc)
        self.ambiguous.append(amb)
        print(
            f"  {self.model.name} epoch {epoch + 1}: held-out token "
            f"accuracy {acc:.4f} (undecidable left-to-right: {amb:.4f})"
        )


def plot(curves, example, steps_per_epoch, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(11, 6.2))
    grid = fig.add_gridspec(2, 2, height_ratios=[1.6, 1])
    ax1 = fig.add_subplot(grid[0, 0])
    ax2 = fig.add_subplot(grid[0, 1])
    for name, style in (("unidirectional", "o-"), ("bidirectional", "s-")):
        acc = curves[name]
        step = np.arange(1, len(acc["all"]) + 1) * steps_per_epoch
        ax1.plot(step, acc["all"], style, label=name)
        ax2.plot(step, acc["ambiguous"], style, label=name)
    ax1.set_title("held-out token accuracy (padding excluded)")
    ax2.set_title(
        "on tokens after an unclosed '(' so far\n"
        "(undecidable reading left to right)"
    )
    for ax in (ax1, ax2):
        ax.set_xlabel("training step (batches of 64 sequences)")
        ax.set_ylabel("token accuracy")
        ax.set_ylim(0.3, 1.01)
        ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right")

    ax3 = fig.add_subplot(grid[1, :])
    seq, rows = example
    labels = list(rows)
    ax3.imshow(
        np.stack([rows[k] for k in labels]),
        aspect="auto",
        cmap="RdBu_r",
        vmin=0,
        vmax=1,
    )
    ax3.set_yticks(range(len(labels)), labels)
    ax3.set_xticks(range(len(seq)), [SYMBOLS[t] for t in seq])
    ax3.set_xlabel("token of one held-out sequence (padding not shown)")
    ax3.set_title(
        "tag 1 = nearest brackets '(' on the left, ')' on the right: "
        "truth and "
        "predicted probability (blue 0, red 1)"
    )
    fig.suptitle("krp.LSTM vs Bidirectional(krp.LSTM): bracket tagging")
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
        n_train, n_test, epochs, steps = 512, 128, 2, 4
    else:  # short epochs (to see the curves start), new data at every step
        n_train, n_test, epochs, steps = 64 * 15 * 20, 1000, 15, 20
    checks = Checks()

    # -- 1. data -----------------------------------------------------------
    x_train, y_train, _ = make_data(n_train, args.seed)
    x_test, y_test, amb_test = make_data(n_test, args.seed + 1)
    real = x_test != 0
    print(
        f"{n_train} training and {n_test} held-out sequences of "
        f"{MIN_LEN}-{MAX_LEN} tokens; {y_test[real].mean():.1%} of "
        f"held-out tokens are tagged 1; {amb_test.sum() / real.sum():.1%} "
        f"cannot be decided reading left to right"
    )
    for k in range(2):
        seq = x_test[k]
        n = int((seq != 0).sum())
        print(f"  {show(seq)}\n  " + " ".join(str(t) for t in y_test[k, :n, 0]))

    # -- 2. train both -----------------------------------------------------
    models, curves = {}, {}
    for bidirectional in (False, True):
        keras.utils.set_random_seed(args.seed)
        model = make_model(bidirectional)
        callback = MaskedAccuracy(x_test, y_test, amb_test)
        print(
            f"training the {model.name} model "
            f"({model.count_params():,} weights)"
        )
        model.fit(
            x_train,
            y_train,
            batch_size=64,
            epochs=epochs,
            steps_per_epoch=steps,
            callbacks=[callback],
            verbose=2,
        )
        models[model.name] = model
        curves[model.name] = dict(
            all=callback.all, ambiguous=callback.ambiguous
        )

    # -- 3. held-out accuracy ----------------------------------------------
    results = {}
    for name, model in models.items():
        acc, amb = token_accuracy(model, x_test, y_test, amb_test)
        results[name] = dict(
            token_accuracy=acc,
            undecidable_accuracy=amb,
            weights=model.count_params(),
        )
        print(
            f"{name:>14}: token accuracy {acc:.4f}, on undecidable "
            f"tokens {amb:.4f}"
        )
    majority = float(1 - y_test[real].mean())
    uni = results["unidirectional"]["token_accuracy"]
    bi = results["bidirectional"]["token_accuracy"]
    if args.quick:  # two tiny epochs: at least as good as "always 0"
        ok = bi >= majority - 0.02
        target = f"bidirectional {bi:.3f} >= majority {majority:.3f} - 0.02"
    else:
        ok = bi >= 0.98 and bi > uni + 0.05
        target = (
            f"bidirectional {bi:.4f} >= 0.98 and > unidirectional "
            f"{uni:.4f} + 0.05"
        )
    checks("accuracy", ok, target)

    # -- 4. the padding changes nothing ------------------------------------
    diffs = []
    for model in models.values():
        batch = model.predict(x_test[:8], verbose=0)
        for k in range(8):
            n = int((x_test[k] != 0).sum())
            # a direct call: `predict` would retrace for every length
            alone = np.asarray(model(x_test[k : k + 1, :n]))
            diffs.append(float(np.max(np.abs(alone[0] - batch[k, :n]))))
    checks(
        "masking",
        max(diffs) <= MASK_ATOL,
        f"8 sequences x 2 models, unpadded vs padded batch: max abs diff "
        f"{max(diffs):.2e} <= {MASK_ATOL:g}",
    )

    # -- 5. plot and summary -----------------------------------------------
    # an example with tokens tagged 1 and undecidable tokens tagged 0
    inside = y_test[..., 0].sum(axis=1)
    unclosed = (amb_test & (y_test[..., 0] == 0)).sum(axis=1)
    k = int(np.argmax(np.minimum(inside, unclosed)))
    n = int((x_test[k] != 0).sum())
    rows = {"truth": y_test[k, :n, 0]}
    for name, model in models.items():
        rows[name] = np.asarray(model(x_test[k : k + 1, :n]))[0, :, 0]
    example = (x_test[k, :n], rows)
    plot_path = out / "accuracy.png"
    plot(curves, example, steps, plot_path)
    print(f"wrote {plot_path}")
    summary = dict(
        quick=args.quick,
        train_sequences=n_train,
        test_sequences=n_test,
        epochs=epochs,
        steps_per_epoch=steps,
        majority_baseline=majority,
        results=results,
        curves=curves,
        masking_max_diff=max(diffs),
        checks=checks.results,
        seconds=round(time.time() - start, 1),
    )
    return finish(out, summary, checks, start)


if __name__ == "__main__":
    sys.exit(main())
