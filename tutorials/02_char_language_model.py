"""Tutorial 2: a character-level language model with `krp.LSTM`.

The corpus ships with Python: the docstrings of a fixed list of
standard-library modules (the module, its public classes and functions and
their public methods, in sorted order, via `inspect.getdoc`), so the text
is the same on every run of a given Python version. Every tenth docstring
is held out for validation. The script

1. maps the characters to integers (printable ASCII and newline; anything
   else becomes one "unknown" symbol);
2. trains `Embedding -> krp.LSTM(return_sequences=True) -> Dense` to
   predict the next character of random windows of the training text;
3. reports the per-character loss and perplexity on the held-out text,
   against a unigram model (character frequencies of the training text);
4. builds a one-step model from the same layers (the LSTM's
   `initial_state` in, its final `[h, c]` out), checks that stepping it
   character by character gives the logits of the full-sequence model,
   and samples text at a few temperatures;
5. writes a loss curve (PNG), the samples and a summary (JSON).

Every check prints `CHECK <name>: PASS` or `FAIL`; the script exits with
status 1 if any check fails.

    python tutorials/02_char_language_model.py          # ~2.5 min, 2 CPU cores
    python tutorials/02_char_language_model.py --quick  # a few seconds
"""

import importlib
import inspect
import math
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
DEFAULT_OUT = HERE / "output" / "02_char_language_model"

MODULES = (
    "argparse collections contextlib csv dataclasses datetime decimal "
    "difflib email.message fractions functools heapq inspect itertools json "
    "logging math os pathlib pickle random re shutil socket statistics "
    "string subprocess tarfile textwrap threading typing unittest "
    "urllib.parse zipfile"
).split()
CHARS = "\n" + "".join(chr(i) for i in range(32, 127))
UNKNOWN = len(CHARS)  # index of the "unknown" symbol
VOCAB = len(CHARS) + 1
PROMPT = "Return the "
TEMPERATURES = (0.2, 0.6, 1.0)
STEP_ATOL = 1e-4  # one-step model vs full-sequence model, logits


def parse_args(argv=None):
    parser = _common.parser(
        __doc__,
        DEFAULT_OUT,
        "small corpus, small model, 2 short epochs (for the tests)",
    )
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def docstrings(module_name):
    """The docstrings of a module and of its public classes, functions and
    methods, in a fixed (sorted) order."""
    module = importlib.import_module(module_name)
    docs = [inspect.getdoc(module)]
    for name, obj in sorted(vars(module).items()):
        if name.startswith("_") or getattr(obj, "__module__", None) != (
            module.__name__
        ):
            continue
        if inspect.isfunction(obj):
            docs.append(inspect.getdoc(obj))
        elif inspect.isclass(obj):
            docs.append(inspect.getdoc(obj))
            for meth_name, meth in sorted(vars(obj).items()):
                if not meth_name.startswith("_") and inspect.isfunction(meth):
                    docs.append(inspect.getdoc(meth))
    return [d for d in docs if d]


def load_corpus():
    """(training text, validation text): every tenth docstring is held
    out."""
    docs = [d for name in MODULES for d in docstrings(name)]
    train = [d for k, d in enumerate(docs) if k % 10 != 9]
    val = [d for k, d in enumerate(docs) if k % 10 == 9]
    return "\n\n".join(train) + "\n\n", "\n\n".join(val) + "\n\n", len(docs)


def encode(text):
    lookup = {ch: k for k, ch in enumerate(CHARS)}
    return np.array([lookup.get(ch, UNKNOWN) for ch in text], dtype="int32")


def decode(ids):
    return "".join(CHARS[k] if k < len(CHARS) else "?" for k in ids)


def random_windows(ids, n, length, rs):
    """`n` random windows: inputs `ids[s:s+length]`, targets shifted by
    one."""
    starts = rs.randint(0, len(ids) - length - 1, n)
    idx = starts[:, None] + np.arange(length + 1)[None, :]
    windows = ids[idx]
    return windows[:, :-1], windows[:, 1:]


def consecutive_windows(ids, length):
    """The whole text cut into non-overlapping windows (for evaluation)."""
    n = (len(ids) - 1) // length
    x = ids[: n * length].reshape(n, length)
    y = ids[1 : n * length + 1].reshape(n, length)
    return x, y


def unigram_cross_entropy(train_ids, val_ids):
    """Per-character loss (nats) on `val_ids` of the character frequencies
    of `train_ids` (add-one smoothing)."""
    counts = np.bincount(train_ids, minlength=VOCAB) + 1.0
    logp = np.log(counts / counts.sum())
    return float(-np.mean(logp[val_ids]))


def make_model(units, embed_dim):
    """The training model (full sequences) and the layers it is made of."""
    embedding = keras.layers.Embedding(VOCAB, embed_dim, name="embedding")
    lstm = krp.LSTM(
        units, return_sequences=True, return_state=True, name="lstm"
    )
    head = keras.layers.Dense(VOCAB, name="logits")
    tokens = keras.Input((None,), dtype="int32", name="tokens")
    seq, _, _ = lstm(embedding(tokens))
    model = keras.Model(tokens, head(seq), name="char_lm")
    return model, (embedding, lstm, head)


def make_step_model(layers, units):
    """One character in, next-character logits out, with the LSTM's states
    `[h, c]` passed in and out: the same layers (weights shared)."""
    embedding, lstm, head = layers
    token = keras.Input((1,), dtype="int32", name="token")
    h_in = keras.Input((units,), name="h")
    c_in = keras.Input((units,), name="c")
    seq, h, c = lstm(embedding(token), initial_state=[h_in, c_in])
    return keras.Model([token, h_in, c_in], [head(seq)[:, 0], h, c])


def stepper(step_model):
    """`step(tokens, h, c) -> (logits, h, c)`: the one-step model as a
    compiled function, NumPy in and out."""
    fn = tf.function(step_model)

    def step(tokens, h, c):
        tensors = [tf.constant(np.asarray(v)) for v in (tokens, h, c)]
        return [np.asarray(v) for v in fn(tensors)]

    return step


def sample(step, units, prompt, length, temperatures, seed):
    """One text per temperature, all sampled together as one batch."""
    rs = np.random.RandomState(seed)
    temps = np.asarray(temperatures, dtype="float64")[:, None]
    batch = len(temperatures)
    h = np.zeros((batch, units), "float32")
    c = np.zeros((batch, units), "float32")
    ids = [list(encode(prompt)) for _ in range(batch)]
    logits = None
    for k in encode(prompt):  # read the prompt
        token = np.full((batch, 1), k, "int32")
        logits, h, c = step(token, h, c)
    for _ in range(length):
        z = np.asarray(logits, "float64") / temps
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        nxt = [rs.choice(VOCAB, p=row) for row in p]
        for row, k in zip(ids, nxt):
            row.append(k)
        token = np.asarray(nxt, "int32")[:, None]
        logits, h, c = step(token, h, c)
    return [decode(row) for row in ids]


def plot(history, unigram, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    chars = np.asarray(history["chars_seen"]) / 1e6
    ax.plot(
        chars[1:], history["loss"], "o-", label="training (mean over the epoch)"
    )
    ax.plot(chars, history["val_loss"], "s-", label="held-out")
    ax.axhline(unigram, color="gray", ls="--", label="unigram model (held-out)")
    ax.axhline(
        math.log(VOCAB),
        color="gray",
        ls=":",
        label=f"uniform over the {VOCAB} symbols",
    )
    ax.set_xlabel("training characters seen (millions)")
    ax.set_ylabel("loss per character (nats)")
    ax.set_title("krp.LSTM character language model (stdlib docstrings)")
    final = history["val_loss"][-1]
    ax.annotate(
        f"perplexity {math.exp(final):.2f}",
        (chars[-1], final),
        xytext=(-10, 25),
        textcoords="offset points",
        ha="right",
        arrowprops=dict(arrowstyle="->"),
    )
    ax.set_ylim(0, math.log(VOCAB) + 0.3)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv=None):
    args = parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # progress shows when piped
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    start = time.time()
    keras.utils.set_random_seed(args.seed)
    rs = np.random.RandomState(args.seed)
    if args.quick:
        units, embed_dim, length, batch = 64, 16, 40, 32
        epochs, steps, sample_len = 2, 10, 60
    else:
        units, embed_dim, length, batch = 256, 32, 100, 32
        epochs, steps, sample_len = 12, 60, 300
    checks = Checks()

    # -- 1. the corpus -----------------------------------------------------
    train_text, val_text, n_docs = load_corpus()
    if args.quick:
        train_text, val_text = train_text[:40_000], val_text[:4_000]
    train_ids, val_ids = encode(train_text), encode(val_text)
    print(
        f"corpus: {n_docs} docstrings of {len(MODULES)} stdlib modules; "
        f"{len(train_ids):,} training and {len(val_ids):,} validation "
        f"characters; vocabulary {VOCAB} symbols "
        f"({np.mean(train_ids == UNKNOWN):.4%} unknown)"
    )
    unigram = unigram_cross_entropy(train_ids, val_ids)
    print(
        f"unigram baseline: {unigram:.3f} nats/char, perplexity "
        f"{math.exp(unigram):.2f} (uniform: {VOCAB})"
    )

    # -- 2. train ----------------------------------------------------------
    model, layers = make_model(units, embed_dim)
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3, clipnorm=1.0),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.summary()
    x_val, y_val = consecutive_windows(val_ids, length)
    initial = float(model.evaluate(x_val, y_val, verbose=0))
    history = dict(loss=[], val_loss=[initial], chars_seen=[0])
    for epoch in range(epochs):
        x, y = random_windows(train_ids, steps * batch, length, rs)
        fit = model.fit(
            x,
            y,
            batch_size=batch,
            epochs=epoch + 1,
            initial_epoch=epoch,
            validation_data=(x_val, y_val),
            verbose=2,
        )
        history["loss"].append(float(fit.history["loss"][-1]))
        history["val_loss"].append(float(fit.history["val_loss"][-1]))
        history["chars_seen"].append((epoch + 1) * steps * batch * length)

    # -- 3. held-out perplexity --------------------------------------------
    val_loss = float(model.evaluate(x_val, y_val, verbose=0))
    print(
        f"held-out: {val_loss:.3f} nats/char = {val_loss / math.log(2):.3f} "
        f"bits/char, perplexity {math.exp(val_loss):.2f}; unigram "
        f"perplexity {math.exp(unigram):.2f}"
    )
    if args.quick:  # a few steps: better than guessing uniformly
        ok = val_loss < math.log(VOCAB)
        target = f"< uniform {math.log(VOCAB):.3f}"
    else:  # trained: much better than character frequencies alone
        ok = val_loss < unigram - 1.0
        target = f"< unigram {unigram:.3f} - 1"
    checks("perplexity", ok, f"held-out loss {val_loss:.3f} {target}")

    # -- 4. one step at a time, then sampling ------------------------------
    step = stepper(make_step_model(layers, units))
    snippet = val_ids[:50]
    full_logits = model.predict(snippet[None, :], verbose=0)[0]
    h = np.zeros((1, units), "float32")
    c = np.zeros((1, units), "float32")
    stepped = []
    for k in snippet:
        logits, h, c = step(np.array([[k]], "int32"), h, c)
        stepped.append(logits[0])
    step_diff = float(np.max(np.abs(np.stack(stepped) - full_logits)))
    checks(
        "stepwise",
        step_diff <= STEP_ATOL,
        f"one-step model over {len(snippet)} characters vs the full "
        f"sequence: logits max abs diff {step_diff:.2e} <= {STEP_ATOL:g}",
    )
    samples = sample(step, units, PROMPT, sample_len, TEMPERATURES, args.seed)
    text = []
    for temp, s in zip(TEMPERATURES, samples):
        block = f"--- temperature {temp} ---\n{s}\n"
        print(block)
        text.append(block)
    (out / "samples.txt").write_text("\n".join(text))

    # -- 5. plot and summary -----------------------------------------------
    plot_path = out / "loss.png"
    plot(history, unigram, plot_path)
    print(f"wrote {plot_path}")
    summary = dict(
        quick=args.quick,
        modules=MODULES,
        docstrings=n_docs,
        train_chars=len(train_ids),
        val_chars=len(val_ids),
        vocab=VOCAB,
        units=units,
        epochs=epochs,
        steps_per_epoch=steps,
        batch_size=batch,
        window=length,
        val_loss_nats=val_loss,
        val_bits_per_char=val_loss / math.log(2),
        val_perplexity=math.exp(val_loss),
        unigram_loss_nats=unigram,
        unigram_perplexity=math.exp(unigram),
        history=history,
        stepwise_diff=step_diff,
        samples=dict(zip(map(str, TEMPERATURES), samples)),
        checks=checks.results,
        seconds=round(time.time() - start, 1),
    )
    return finish(out, summary, checks, start)


if __name__ == "__main__":
    sys.exit(main())
