"""LSTM: the cell (one time step) and the layer (the cell over a sequence),
with the variants of the literature as keyword-only arguments.

Plain equations, gate order i, f, c, o as in Keras (`W` = `kernel`,
`U` = `recurrent_kernel`, `b` = `bias`, `σ` = `recurrent_activation`,
`act` = `activation`):

    i(t) = σ(x(t) W_i + h(t-1) U_i + b_i)
    f(t) = σ(x(t) W_f + h(t-1) U_f + b_f)
    g(t) = act(x(t) W_c + h(t-1) U_c + b_c)
    o(t) = σ(x(t) W_o + h(t-1) U_o + b_o)
    c(t) = f(t) * c(t-1) + i(t) * g(t)
    h(t) = o(t) * act(c(t))

Each variant changes one piece of this (see `LSTMCell.variant_step`):

    use_peepholes         i, f see p_i * c(t-1), p_f * c(t-1); o sees p_o * c(t)
    forget_bias           f(t) = σ(... + forget_bias)
    cell_clip             c(t) = clip(c(t), -cell_clip, cell_clip)
    use_forget_gate=False c(t) = c(t-1) + i(t) * g(t)        (no f weights)
    coupled_input_forget  f(t) = 1 - i(t)                    (no f weights)
    layer_norm            LN(x W) + LN(h U) + b;  h(t) = o * act(LN(c(t)))
    num_proj, proj_clip   h(t) = clip((o * act(c(t))) P, -proj_clip, proj_clip)
"""

import inspect

import keras
import numpy as np
from keras import ops
from keras.src import backend as _backend

from keras_rnn_plus import _args, deploy
from keras_rnn_plus._base import (
    SERIALIZABLE,
    GatedCell,
    ReadOnceWeight,
    RecurrentLayer,
    StepOps,
    expose_cell_arguments,
)

LAYER_NORM_EPSILON = 1e-3

_ARGS_DOC = """
        units: Positive integer, dimensionality of the output space (of the
            cell state `c`; of `h` too unless `num_proj` is set).
        activation: Activation of the candidate `g` and of the cell state in
            `h = o * activation(c)`. Default: `"tanh"`. `None` means linear.
        recurrent_activation: Activation of the gates `i`, `f`, `o`.
            Default: `"sigmoid"`. `"keras2_hard_sigmoid"` gives Keras 2's
            `clip(0.2 x + 0.5, 0, 1)` (Keras 3's `"hard_sigmoid"` is
            `clip(x / 6 + 0.5, 0, 1)`).
        use_bias: Boolean, whether the layer uses a bias vector. Default:
            `True`.
        kernel_initializer: Initializer for `kernel`, the input weights of
            shape `(input_dim, 4 * units)`, and for the peephole and
            projection weights (each drawn apart: a copy of the
            initializer, with a new seed, or the given seed plus 1, 2, 3
            for the peepholes of i, f, o and 4 for the projection).
            Default: `"glorot_uniform"`.
        recurrent_initializer: Initializer for `recurrent_kernel`, of shape
            `(units, 4 * units)`. Default: `"orthogonal"`.
        bias_initializer: Initializer for `bias`, of shape `(4 * units,)`.
            Default: `"zeros"`.
        unit_forget_bias: Boolean. If `True`, the forget gate's slice of the
            bias is initialised to ones (Jozefowicz et al. 2015), the other
            slices with `bias_initializer`. Ignored when there are no
            forget-gate weights. Default: `True`.
        kernel_regularizer: Regularizer applied to `kernel`. Default: `None`.
        recurrent_regularizer: Regularizer applied to `recurrent_kernel`.
            Default: `None`.
        bias_regularizer: Regularizer applied to `bias`. Default: `None`.{act}
        kernel_constraint: Constraint applied to `kernel` after each
            optimizer step. Default: `None`.
        recurrent_constraint: Constraint applied to `recurrent_kernel`.
            Default: `None`.
        bias_constraint: Constraint applied to `bias`. Default: `None`.
        dropout: Float in [0, 1): fraction of the inputs dropped before the
            input product, in training only, with the same mask at every
            timestep. Default: 0.
        recurrent_dropout: Float in [0, 1): fraction of `h(t-1)` dropped
            before the recurrent product, in training only, with the same
            mask at every timestep. Default: 0."""

_IMPL_DOC = """
        implementation: 1 or 2. 1 multiplies each gate separately (one
            input and one recurrent product per gate, Keras 2's low-memory
            mode, one dropout mask per gate); 2 does one fused product and
            splits it into the gates. Both give the same numbers. With
            `recurrent_dropout > 0` the per-gate route is taken, as in Keras.
            Keras 2.0's `0` is read as 1 from a saved config. Default: 2."""

_LAYER_ARGS_DOC = """
        return_sequences: Boolean, return the whole output sequence rather
            than the last output. Default: `False`.
        return_state: Boolean, also return the final states `h` and `c`.
            Default: `False`.
        go_backwards: Boolean, process the sequence backwards (and return the
            reversed output sequence). Default: `False`.
        stateful: Boolean: the final states of a batch are the initial
            states of the next; needs a fixed batch size. Reset with
            `reset_state()`. Default: `False`.
        unroll: Boolean, unroll the time loop (short sequences only; needs a
            known number of timesteps). Default: `False`.
        seed: Integer seed of the dropout masks. Default: `None`.
        use_cudnn: `"auto"`, `True` or `False`. On a GPU (with the
            TensorFlow, PyTorch or JAX backend, as Keras's layers) and the
            plain configuration (tanh, sigmoid, bias, no recurrent dropout,
            not unrolled, no variant), `"auto"` runs the backend's cuDNN
            kernel, which computes the same function; `True` requires it.
            Default: `"auto"`."""

_VARIANTS_DOC = """
        use_peepholes: Keyword-only. Gers & Schmidhuber 2000: the input and
            forget gates see `c(t-1)`, the output gate the new `c(t)`,
            through diagonal weights `input_gate_peephole_weights`,
            `forget_gate_peephole_weights`, `output_gate_peephole_weights`,
            each `(units,)` (with CIFG or without a forget gate there are
            no forget-gate peephole weights). Default: `False`.
        forget_bias: Keyword-only float added to the forget gate's
            pre-activation at run time, as TF1's `LSTMCell`. It adds to
            the bias that `unit_forget_bias` initialises to ones: to start
            training as TF1 did (a zero bias and `forget_bias=1.0`), pass
            `unit_forget_bias=False` too. Default: 0.
        cell_clip: Keyword-only positive float or `None`: `c(t)` is clipped
            to `[-cell_clip, cell_clip]` (before the output gate sees it).
        num_proj: Keyword-only positive integer or `None`. Sak et al. 2014
            projection: `h(t) = (o * act(c(t))) @ projection_kernel`, with
            `projection_kernel` of shape `(units, num_proj)`; the output, the
            `h` state and the rows of `recurrent_kernel` have `num_proj`
            dimensions.
        proj_clip: Keyword-only positive float or `None` (needs `num_proj`):
            the projected `h` is clipped to `[-proj_clip, proj_clip]`.
        use_forget_gate: Keyword-only. `False` gives the original
            Hochreiter & Schmidhuber 1997 LSTM, `c(t) = c(t-1) + i * g`, with
            no forget-gate weights: `kernel` `(input_dim, 3 * units)`,
            `recurrent_kernel` `(units, 3 * units)`, `bias` `(3 * units,)`,
            gate order i, c, o. Default: `True`.
        coupled_input_forget: Keyword-only. CIFG (Greff et al. 2015):
            `f = 1 - i`, no forget-gate weights (shapes as above, gate order
            i, c, o). Default: `False`.
        layer_norm: Keyword-only. Layer-normalised LSTM (Ba et al. 2016,
            eqs. 20-22): the input product `x W` and the recurrent product
            `h U` (each over all gates, `(G * units,)` wide) are normalised
            separately with learned scale and offset (`kernel_norm_gamma`,
            `kernel_norm_beta`, `recurrent_norm_gamma`,
            `recurrent_norm_beta`), then the bias is added; the output uses
            the normalised cell state, `h = o * act(LN(c))`, with
            `cell_norm_gamma`, `cell_norm_beta` `(units,)`; the carried state
            `c` itself is not normalised. Epsilon 1e-3. Default: `False`.

    Weights, in `get_weights()` order: `kernel`, `recurrent_kernel`, `bias`,
    then the peephole weights of i, f, o (i, o where the forget gate has no
    weights), then `projection_kernel`, then the layer-norm weights
    (`kernel_norm_gamma`, `kernel_norm_beta`, `recurrent_norm_gamma`,
    `recurrent_norm_beta`, `cell_norm_gamma`, `cell_norm_beta`). Any
    combination of the variants works, except `coupled_input_forget` with
    `use_forget_gate=False` (CIFG derives `f` from `i`), a nonzero
    `forget_bias` without forget-gate weights (no forget gate, or CIFG),
    and `proj_clip` without `num_proj`: these raise `ValueError`."""


def lstm_gates(z, c_tm1, activation, recurrent_activation):
    """The plain LSTM nonlinearity: from the four gate pre-activations
    (i, f, c, o) to the new (h, c)."""
    z_i, z_f, z_c, z_o = z
    i = recurrent_activation(z_i)
    f = recurrent_activation(z_f)
    c = f * c_tm1 + i * activation(z_c)
    o = recurrent_activation(z_o)
    return o * activation(c), c


def layer_norm(x, gamma, beta, epsilon=LAYER_NORM_EPSILON):
    """Normalise over the last axis, then scale and offset (Ba et al.).
    Half-precision inputs are normalised in float32, as Keras's
    `LayerNormalization` does (a float16 variance overflows early)."""
    dtype = keras.backend.standardize_dtype(x.dtype)
    if dtype in ("float16", "bfloat16"):
        x, gamma, beta = (ops.cast(t, "float32") for t in (x, gamma, beta))
        return ops.cast(layer_norm(x, gamma, beta, epsilon), dtype)
    centered = x - ops.mean(x, axis=-1, keepdims=True)
    var = ops.mean(ops.square(centered), axis=-1, keepdims=True)
    return centered * (gamma * ops.rsqrt(var + epsilon)) + beta


@SERIALIZABLE
class LSTMCell(GatedCell):
    __doc__ = (
        """Long Short-Term Memory cell: one time step of `krp.LSTM`.

    A reimplementation of `keras.layers.LSTMCell` with the same arguments,
    defaults, weights (`kernel`, `recurrent_kernel`, `bias`; gate order
    i, f, c, o) and numbers, plus `implementation` and the variants below.
    Use it inside `keras.layers.RNN`, or use `krp.LSTM`.

    Equations (`σ` = `recurrent_activation`, `act` = `activation`):

        [i, f, g, o] = x(t) kernel + h(t-1) recurrent_kernel + bias
        i, f, o = σ(i), σ(f), σ(o);  g = act(g)
        c(t) = f * c(t-1) + i * g
        h(t) = o * act(c(t))

    Args:"""
        + _ARGS_DOC.format(act="")
        + """
        seed: Integer seed of the dropout masks. Default: `None`."""
        + _IMPL_DOC
        + _VARIANTS_DOC
        + """

    Other keyword arguments are the base-layer ones (`name`, `dtype`,
    `trainable`).

    Call arguments:
        inputs: A 2D tensor `(batch, features)`.
        states: List `[h, c]`: `h` `(batch, num_proj or units)`, `c`
            `(batch, units)`.
        training: Python boolean, whether dropout applies.

    Returns:
        `h` and the new states `[h, c]`.

    Example:

    >>> import numpy as np, keras
    >>> import keras_rnn_plus as krp
    >>> rnn = keras.layers.RNN(krp.LSTMCell(4), return_state=True)
    >>> out, h, c = rnn(np.zeros((2, 5, 3), "float32"))
    >>> tuple(out.shape), tuple(c.shape)
    ((2, 4), (2, 4))
    """
    )
    # The variants' weights (where the variant is on).
    input_gate_peephole_weights = ReadOnceWeight()
    forget_gate_peephole_weights = ReadOnceWeight()
    output_gate_peephole_weights = ReadOnceWeight()
    projection_kernel = ReadOnceWeight()
    kernel_norm_gamma = ReadOnceWeight()
    kernel_norm_beta = ReadOnceWeight()
    recurrent_norm_gamma = ReadOnceWeight()
    recurrent_norm_beta = ReadOnceWeight()
    cell_norm_gamma = ReadOnceWeight()
    cell_norm_beta = ReadOnceWeight()

    def __init__(
        self,
        units,
        activation="tanh",
        recurrent_activation="sigmoid",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        unit_forget_bias=True,
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        seed=None,
        implementation=2,
        *,
        use_peepholes=False,
        forget_bias=0.0,
        cell_clip=None,
        num_proj=None,
        proj_clip=None,
        use_forget_gate=True,
        coupled_input_forget=False,
        layer_norm=False,
        **kwargs,
    ):
        super().__init__(
            units,
            activation=activation,
            recurrent_activation=recurrent_activation,
            use_bias=use_bias,
            kernel_initializer=kernel_initializer,
            recurrent_initializer=recurrent_initializer,
            bias_initializer=bias_initializer,
            kernel_regularizer=kernel_regularizer,
            recurrent_regularizer=recurrent_regularizer,
            bias_regularizer=bias_regularizer,
            kernel_constraint=kernel_constraint,
            recurrent_constraint=recurrent_constraint,
            bias_constraint=bias_constraint,
            dropout=dropout,
            recurrent_dropout=recurrent_dropout,
            seed=seed,
            implementation=implementation,
            **kwargs,
        )
        self.unit_forget_bias = _args.boolean(
            "unit_forget_bias", unit_forget_bias
        )
        self.use_peepholes = _args.boolean("use_peepholes", use_peepholes)
        self.use_forget_gate = _args.boolean(
            "use_forget_gate", use_forget_gate
        )
        self.coupled_input_forget = _args.boolean(
            "coupled_input_forget", coupled_input_forget
        )
        self.layer_norm = _args.boolean("layer_norm", layer_norm)
        self.forget_bias = _args.finite_number("forget_bias", forget_bias)
        self.cell_clip = _args.positive_or_none("cell_clip", cell_clip)
        self.proj_clip = _args.positive_or_none("proj_clip", proj_clip)
        self.num_proj = (
            None if num_proj is None else _args.positive_int("num_proj",
                                                             num_proj)
        )
        if self.coupled_input_forget and not self.use_forget_gate:
            raise ValueError(
                "coupled_input_forget=True needs use_forget_gate=True: CIFG "
                "computes the forget gate as 1 - i"
            )
        self.has_forget_weights = (
            self.use_forget_gate and not self.coupled_input_forget
        )
        if self.forget_bias and not self.has_forget_weights:
            raise ValueError(
                "forget_bias needs a forget gate with its own weights; got "
                f"forget_bias={forget_bias} with use_forget_gate="
                f"{self.use_forget_gate}, coupled_input_forget="
                f"{self.coupled_input_forget}"
            )
        if self.proj_clip is not None and self.num_proj is None:
            raise ValueError("proj_clip needs num_proj (a projection)")
        self.gate_names = "ifco" if self.has_forget_weights else "ico"
        self.num_gates = len(self.gate_names)
        self.is_plain = self.has_forget_weights and not (
            self.use_peepholes
            or self.forget_bias
            or self.cell_clip
            or self.num_proj
            or self.layer_norm
        )
        h_size = self.num_proj or self.units
        self.state_size = [h_size, self.units]
        self.output_size = h_size

    # -- weights -------------------------------------------------------------
    def _recurrent_input_size(self):
        return self.num_proj or self.units

    def _bias_initializer(self):
        if not (self.unit_forget_bias and self.has_forget_weights):
            return self.bias_initializer
        init, units = self.bias_initializer, self.units
        if init is None:
            raise ValueError(
                "bias_initializer=None: unit_forget_bias=True needs an "
                "initializer for the other gates' biases (e.g. 'zeros'), "
                "or pass unit_forget_bias=False"
            )

        def bias_with_unit_forget(_, *args, **kwargs):
            return ops.concatenate(
                [
                    init((units,), *args, **kwargs),
                    keras.initializers.Ones()((units,), *args, **kwargs),
                    init((2 * units,), *args, **kwargs),
                ]
            )

        return bias_with_unit_forget

    def _kernel_initializer_copy(self, offset):
        """`kernel_initializer` for another weight. A Keras 3 initializer
        draws the same numbers at every call (its seed is fixed when it is
        made), so the peephole vectors would start equal, and the
        projection kernel would repeat `kernel`'s first numbers: as
        Keras's own layers do for sublayers, each weight gets a copy, with
        a new seed if unseeded, or the given seed plus `offset`."""
        init = self.kernel_initializer
        if not isinstance(init, keras.initializers.Initializer):
            return init  # a plain function
        config = init.get_config()
        if isinstance(config.get("seed"), int):
            config["seed"] += offset
        try:
            return init.__class__.from_config(config)
        except (TypeError, ValueError):  # a custom class without a config
            return init

    def build(self, input_shape):
        super().build(input_shape)
        units, n = self.units, self.num_gates * self.units
        if self.use_peepholes:
            for k, gate in enumerate(("input", "forget", "output"), 1):
                if gate == "forget" and not self.has_forget_weights:
                    continue
                setattr(
                    self,
                    f"{gate}_gate_peephole_weights",
                    self.add_weight(
                        shape=(units,),
                        name=f"{gate}_gate_peephole_weights",
                        initializer=self._kernel_initializer_copy(k),
                    ),
                )
        if self.num_proj:
            self.projection_kernel = self.add_weight(
                shape=(units, self.num_proj),
                name="projection_kernel",
                initializer=self._kernel_initializer_copy(4),
            )
        if self.layer_norm:
            for name, size in (("kernel", n), ("recurrent", n),
                               ("cell", units)):
                for param, init in (("gamma", "ones"), ("beta", "zeros")):
                    setattr(
                        self,
                        f"{name}_norm_{param}",
                        self.add_weight(
                            shape=(size,),
                            name=f"{name}_norm_{param}",
                            initializer=init,
                        ),
                    )

    # -- one step --------------------------------------------------------------
    def _normalize_input_product(self, z):
        if not self.layer_norm:
            return z
        return layer_norm(z, self.kernel_norm_gamma, self.kernel_norm_beta)

    @property
    def _bias_last(self):
        # Keras's order of sums: in the fused mode `x W + h U`, then the
        # bias; in the per-gate mode `x W_g + b_g`, then `h U_g` (it shows
        # under mixed precision). With layer norm the same orders hold for
        # the normalised products: `(LN(x W) + LN(h U)) + b` fused,
        # `(LN(x W) + b) + LN(h U)` per gate.
        return self.bias is not None and not self.per_gate

    def _input_bias(self):
        return None if self._bias_last else self.bias

    def recurrent_step(self, z, states, training=False, step_ops=StepOps):
        h_tm1, c_tm1 = states[0], states[1]
        r = self.recurrent_products(h_tm1, training, step_ops)
        if self.layer_norm:
            if self.per_gate:
                r = ops.concatenate(r, axis=-1)
            r = layer_norm(
                r, self.recurrent_norm_gamma, self.recurrent_norm_beta
            )
        if self.per_gate and not self.layer_norm:
            z = ops.split(z, self.num_gates, axis=-1)
            gates = [a + b for a, b in zip(z, r)]
        else:
            z = z + r
            if self._bias_last:
                z = step_ops.add_bias(z, self.bias)
            gates = step_ops.split(z, self.num_gates)
        if self.is_plain:
            h, c = lstm_gates(
                gates,
                c_tm1,
                step_ops.activation(self.activation),
                step_ops.activation(self.recurrent_activation),
            )
        else:
            h, c = self.variant_step(dict(zip(self.gate_names, gates)), c_tm1)
        return h, [h, c]

    def onnx_step(self):
        """The plain LSTM as tf2onnx recognises Keras's (one ONNX `LSTM`
        op): `x @ kernel + h @ recurrent_kernel`, then the bias, one
        product each. `forget_bias` joins the bias; the other variants
        have no form tf2onnx knows (ONNX's own `clip` bounds the gates'
        pre-activations, not the cell)."""
        import tensorflow as tf

        sigma = deploy.onnx_activation(
            self.recurrent_activation, recurrent=True
        )
        act = deploy.onnx_activation(self.activation)
        other_variants = (self.use_peepholes or self.cell_clip
                          or self.num_proj or self.layer_norm)
        if other_variants or not (self.has_forget_weights and sigma and act):
            return None
        kernel = ops.convert_to_tensor(self.kernel)
        recurrent_kernel = ops.convert_to_tensor(self.recurrent_kernel)
        bias = None if self.bias is None else ops.convert_to_tensor(self.bias)
        if self.forget_bias:
            forget = np.repeat([0.0, self.forget_bias, 0.0, 0.0], self.units)
            forget = tf.constant(forget, kernel.dtype)
            bias = forget if bias is None else bias + forget

        def step(x, states):
            h, c = states
            z = tf.matmul(x, kernel) + tf.matmul(h, recurrent_kernel)
            if bias is not None:
                z = tf.nn.bias_add(z, bias)
            i, f, g, o = tf.split(z, 4, axis=1)
            c = sigma(f) * c + sigma(i) * act(g)
            h = sigma(o) * act(c)
            return h, (h, c)

        return step

    def variant_step(self, z, c_tm1):
        """The LSTM nonlinearity with every variant: `z` maps gate names
        ("i", "f", "c", "o") to pre-activations; returns the new (h, c)."""
        sigma, act = self.recurrent_activation, self.activation
        peep = self.use_peepholes
        z_i = z["i"] + self.input_gate_peephole_weights * c_tm1 if peep \
            else z["i"]
        i = sigma(z_i)
        g = act(z["c"])
        if self.coupled_input_forget:  # CIFG
            c = (1.0 - i) * c_tm1 + i * g
        elif not self.use_forget_gate:  # Hochreiter & Schmidhuber 1997
            c = c_tm1 + i * g
        else:
            z_f = z["f"] + self.forget_bias if self.forget_bias else z["f"]
            if peep:
                z_f = z_f + self.forget_gate_peephole_weights * c_tm1
            c = sigma(z_f) * c_tm1 + i * g
        if self.cell_clip is not None:
            c = ops.clip(c, -self.cell_clip, self.cell_clip)
        z_o = z["o"] + self.output_gate_peephole_weights * c if peep \
            else z["o"]
        c_out = (
            layer_norm(c, self.cell_norm_gamma, self.cell_norm_beta)
            if self.layer_norm
            else c
        )
        h = sigma(z_o) * act(c_out)
        if self.num_proj:
            h = ops.matmul(h, self.projection_kernel)
            if self.proj_clip is not None:
                h = ops.clip(h, -self.proj_clip, self.proj_clip)
        return h, c

    def argument_config(self):
        return {
            **super().argument_config(),
            "unit_forget_bias": self.unit_forget_bias,
            "use_peepholes": self.use_peepholes,
            "forget_bias": self.forget_bias,
            "cell_clip": self.cell_clip,
            "num_proj": self.num_proj,
            "proj_clip": self.proj_clip,
            "use_forget_gate": self.use_forget_gate,
            "coupled_input_forget": self.coupled_input_forget,
            "layer_norm": self.layer_norm,
        }


@SERIALIZABLE
class LSTM(RecurrentLayer):
    __doc__ = (
        """Long Short-Term Memory layer (Hochreiter & Schmidhuber 1997, with
    the forget gate of Gers et al. 2000).

    A drop-in reimplementation of `keras.layers.LSTM`: the same arguments
    and defaults, the same weights (`kernel` `(input_dim, 4 * units)`,
    `recurrent_kernel` `(units, 4 * units)`, `bias` `(4 * units,)`, gate
    order i, f, c, o), so `set_weights` and `.weights.h5` files move freely
    between the two, and the same outputs, states and gradients.

    Equations (`σ` = `recurrent_activation`, `act` = `activation`):

        i(t) = σ(x(t) W_i + h(t-1) U_i + b_i)
        f(t) = σ(x(t) W_f + h(t-1) U_f + b_f)
        g(t) = act(x(t) W_c + h(t-1) U_c + b_c)
        o(t) = σ(x(t) W_o + h(t-1) U_o + b_o)
        c(t) = f(t) * c(t-1) + i(t) * g(t)
        h(t) = o(t) * act(c(t))

    On a GPU the plain configuration runs the backend's cuDNN kernel (see
    `use_cudnn`).

    Args:"""
        + _ARGS_DOC.format(
            act="""
        activity_regularizer: Regularizer applied to the layer's output.
            Default: `None`."""
        )
        + _IMPL_DOC
        + _LAYER_ARGS_DOC
        + _VARIANTS_DOC
        + """

    Other keyword arguments are the base-layer ones (`name`, `dtype`,
    `trainable`, `input_shape`, ...) and `keras.layers.RNN`'s
    `zero_output_for_mask`.

    Call arguments:
        inputs: A 3D tensor `(batch, timesteps, features)`.
        mask: Optional boolean tensor `(batch, timesteps)`; `False` skips a
            timestep (the states are carried over). Masks from `Masking` or
            `Embedding(mask_zero=True)` are used automatically.
        training: Python boolean, whether dropout applies.
        initial_state: Optional list `[h, c]` of two tensors: `h`
            `(batch, units)` (`(batch, num_proj)` with a projection), `c`
            `(batch, units)`; zeros by default.

    Input shape:
        `(batch, timesteps, features)`.

    Output shape:
        `(batch, timesteps, units)` with `return_sequences`, else
        `(batch, units)` (`num_proj` instead of `units` with a projection);
        with `return_state`, followed by the final `h` and `c` (`c` is
        always `(batch, units)`).

    Example:

    >>> import numpy as np
    >>> import keras_rnn_plus as krp
    >>> x = np.random.random((32, 10, 8)).astype("float32")
    >>> lstm = krp.LSTM(4, return_sequences=True, return_state=True)
    >>> seq, h, c = lstm(x)
    >>> tuple(seq.shape), tuple(h.shape), tuple(c.shape)
    ((32, 10, 4), (32, 4), (32, 4))
    """
    )

    def __init__(
        self,
        units,
        activation="tanh",
        recurrent_activation="sigmoid",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        unit_forget_bias=True,
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        implementation=2,
        return_sequences=False,
        return_state=False,
        go_backwards=False,
        stateful=False,
        unroll=False,
        seed=None,
        use_cudnn="auto",
        *,
        use_peepholes=False,
        forget_bias=0.0,
        cell_clip=None,
        num_proj=None,
        proj_clip=None,
        use_forget_gate=True,
        coupled_input_forget=False,
        layer_norm=False,
        **kwargs,
    ):
        cell = LSTMCell(
            units,
            activation=activation,
            recurrent_activation=recurrent_activation,
            use_bias=use_bias,
            kernel_initializer=kernel_initializer,
            recurrent_initializer=recurrent_initializer,
            bias_initializer=bias_initializer,
            unit_forget_bias=unit_forget_bias,
            kernel_regularizer=kernel_regularizer,
            recurrent_regularizer=recurrent_regularizer,
            bias_regularizer=bias_regularizer,
            kernel_constraint=kernel_constraint,
            recurrent_constraint=recurrent_constraint,
            bias_constraint=bias_constraint,
            dropout=dropout,
            recurrent_dropout=recurrent_dropout,
            seed=seed,
            implementation=implementation,
            use_peepholes=use_peepholes,
            forget_bias=forget_bias,
            cell_clip=cell_clip,
            num_proj=num_proj,
            proj_clip=proj_clip,
            use_forget_gate=use_forget_gate,
            coupled_input_forget=coupled_input_forget,
            layer_norm=layer_norm,
            dtype=kwargs.get("dtype"),
            trainable=kwargs.get("trainable", True),
            name="lstm_cell",
        )
        super().__init__(
            cell,
            use_cudnn=use_cudnn,
            return_sequences=return_sequences,
            return_state=return_state,
            go_backwards=go_backwards,
            stateful=stateful,
            unroll=unroll,
            activity_regularizer=activity_regularizer,
            **kwargs,
        )

    def _cudnn_spec(self):
        if not self.cell.is_plain:  # the fused kernel knows no variant
            return None
        return _backend.lstm, {}


class _Keras2PeepholeDefaults:
    """The defaults of Keras 2's `PeepholeLSTMCell`, for the cell and the
    layer below."""

    def __init__(
        self,
        units,
        activation="tanh",
        recurrent_activation="keras2_hard_sigmoid",
        *args,  # the parent's positional arguments, in its order
        **kwargs,
    ):
        parent_init = super().__init__
        positional = list(inspect.signature(parent_init).parameters)
        if len(args) < positional.index("implementation") - 2:
            kwargs.setdefault("implementation", 1)  # not given by position
        kwargs.setdefault("use_peepholes", True)
        parent_init(units, activation, recurrent_activation, *args, **kwargs)

    def __init_subclass__(cls, **kwargs):
        # `inspect.signature` and `help` show every argument, as for the
        # plain class, with these defaults.
        super().__init_subclass__(**kwargs)
        if "__init__" in vars(cls):  # a subclass's own signature
            cls.__signature__ = None
            return
        plain = cls.__mro__[cls.__mro__.index(_Keras2PeepholeDefaults) + 1]
        defaults = {"recurrent_activation": "keras2_hard_sigmoid",
                    "implementation": 1, "use_peepholes": True}
        signature = inspect.signature(plain)
        cls.__signature__ = signature.replace(parameters=[
            p.replace(default=defaults.get(name, p.default))
            for name, p in signature.parameters.items()
        ])


@SERIALIZABLE
class PeepholeLSTMCell(_Keras2PeepholeDefaults, LSTMCell):
    """`LSTMCell` with peephole connections, a drop-in for Keras 2's
    `tf.keras.experimental.PeepholeLSTMCell`.

    Same weights as Keras 2's (`kernel`, `recurrent_kernel`, `bias`,
    `input_gate_peephole_weights`, `forget_gate_peephole_weights`,
    `output_gate_peephole_weights`) and, like it, the defaults
    `recurrent_activation="keras2_hard_sigmoid"` (Keras 2's hard sigmoid)
    and `implementation=1`. Every other argument is `LSTMCell`'s, in its
    positional order (as Keras 2's, up to `recurrent_dropout`) or by
    keyword (`use_peepholes=True` here).

    Example:

    >>> import numpy as np, keras
    >>> import keras_rnn_plus as krp
    >>> rnn = keras.layers.RNN(krp.PeepholeLSTMCell(4))
    >>> tuple(rnn(np.zeros((2, 5, 3), "float32")).shape)
    (2, 4)
    """


@SERIALIZABLE
class PeepholeLSTM(_Keras2PeepholeDefaults, LSTM):
    """`LSTM` with peephole connections: the layer over `PeepholeLSTMCell`.

    Defaults as Keras 2's `PeepholeLSTMCell`:
    `recurrent_activation="keras2_hard_sigmoid"`, `implementation=1`,
    `use_peepholes=True`; every other argument is `LSTM`'s, in its
    positional order or by keyword.

    Example:

    >>> import numpy as np
    >>> import keras_rnn_plus as krp
    >>> tuple(krp.PeepholeLSTM(4)(np.zeros((2, 5, 3), "float32")).shape)
    (2, 4)
    """


expose_cell_arguments(LSTM, LSTMCell)
