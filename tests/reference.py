"""A NumPy LSTM written from the papers' equations, in float64, for tests.

Hochreiter & Schmidhuber 1997 (no forget gate); Gers et al. 2000 (forget
gate); Gers & Schmidhuber 2000 (peepholes: i, f see c(t-1), o sees c(t));
Sak et al. 2014 (projection); Greff et al. 2015 (CIFG: f = 1 - i);
Ba et al. 2016, eqs. 20-22 (layer norm: LN(W_x x) + LN(W_h h) + b, and
h = o * tanh(LN(c))). Weights are named as in keras_rnn_plus; gates are
sliced by name, so the function does not share code with the package.
"""

import numpy as np


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def layer_norm(x, gamma, beta, eps=1e-3):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * gamma + beta


def lstm(x, w, *, peepholes=False, forget_bias=0.0, cell_clip=None,
         proj_clip=None, forget_gate=True, cifg=False, layer_norm_=False,
         act=np.tanh, gate_act=sigmoid, mask=None, h0=None, c0=None,
         input_masks=None, recurrent_masks=None):
    """Run the LSTM over x (batch, time, features).

    `w` maps names to arrays: kernel, recurrent_kernel, bias (optional),
    input/forget/output_gate_peephole_weights, projection_kernel,
    {kernel,recurrent,cell}_norm_{gamma,beta}. `mask` (batch, time): a
    False step leaves the states and the output unchanged.
    `input_masks` / `recurrent_masks`: dropout, one (batch, features) /
    (batch, h_dim) mask per gate (in weight order), multiplying x(t) /
    h(t-1) before that gate's product at every step.
    Returns (outputs (batch, time, h_dim), h, c).
    """
    x = np.asarray(x, np.float64)
    w = {k: np.asarray(v, np.float64) for k, v in w.items()}
    names = ["i", "f", "c", "o"] if forget_gate and not cifg else \
        ["i", "c", "o"]
    units = w["kernel"].shape[1] // len(names)
    batch, steps, _ = x.shape
    h_dim = w["recurrent_kernel"].shape[0]
    h = np.zeros((batch, h_dim)) if h0 is None else np.asarray(h0, float)
    c = np.zeros((batch, units)) if c0 is None else np.asarray(c0, float)
    out = np.zeros((batch, h_dim))
    outputs = []

    def product(v, kernel, masks):
        if masks is None:
            return v @ kernel
        return np.concatenate(
            [(v * m) @ kernel[:, k * units:(k + 1) * units]
             for k, m in enumerate(masks)], -1)

    for t in range(steps):
        a = product(x[:, t], w["kernel"], input_masks)
        r = product(h, w["recurrent_kernel"], recurrent_masks)
        if layer_norm_:
            a = layer_norm(a, w["kernel_norm_gamma"], w["kernel_norm_beta"])
            r = layer_norm(r, w["recurrent_norm_gamma"],
                           w["recurrent_norm_beta"])
        z = a + r + w.get("bias", 0.0)
        g = {n: z[:, k * units:(k + 1) * units] for k, n in enumerate(names)}
        zi = g["i"] + (w["input_gate_peephole_weights"] * c if peepholes
                       else 0)
        i = gate_act(zi)
        if cifg:
            f = 1.0 - i
        elif forget_gate:
            zf = g["f"] + forget_bias
            if peepholes:
                zf = zf + w["forget_gate_peephole_weights"] * c
            f = gate_act(zf)
        else:
            f = 1.0
        c_new = f * c + i * act(g["c"])
        if cell_clip is not None:
            c_new = np.clip(c_new, -cell_clip, cell_clip)
        zo = g["o"] + (w["output_gate_peephole_weights"] * c_new
                       if peepholes else 0)
        c_shown = (layer_norm(c_new, w["cell_norm_gamma"],
                              w["cell_norm_beta"]) if layer_norm_ else c_new)
        h_new = gate_act(zo) * act(c_shown)
        if "projection_kernel" in w:
            h_new = h_new @ w["projection_kernel"]
            if proj_clip is not None:
                h_new = np.clip(h_new, -proj_clip, proj_clip)
        if mask is not None:
            keep = np.asarray(mask[:, t], bool)[:, None]
            h_new = np.where(keep, h_new, h)
            c_new = np.where(keep, c_new, c)
            out = np.where(keep, h_new, out)
        else:
            out = h_new
        h, c = h_new, c_new
        outputs.append(out)
    return np.stack(outputs, 1), h, c
