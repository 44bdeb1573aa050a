"""LSTM: the cell (one time step) and the layer (the cell over a sequence).

The plain equations, gate order i, f, c, o as in Keras (`W` = `kernel`,
`U` = `recurrent_kernel`, `b` = `bias`, `σ` = `recurrent_activation`,
`act` = `activation`):

    i(t) = σ(x(t) W_i + h(t-1) U_i + b_i)
    f(t) = σ(x(t) W_f + h(t-1) U_f + b_f)
    g(t) = act(x(t) W_c + h(t-1) U_c + b_c)
    o(t) = σ(x(t) W_o + h(t-1) U_o + b_o)
    c(t) = f(t) * c(t-1) + i(t) * g(t)
    h(t) = o(t) * act(c(t))
"""

import keras
from keras import ops
from keras.src import backend as _backend

from keras_rnn_plus._base import SERIALIZABLE, GatedCell, RecurrentLayer

_ARGS_DOC = """
        units: Positive integer, dimensionality of the output space.
        activation: Activation of the candidate `g` and of the cell state in
            `h = o * activation(c)`. Default: `"tanh"`. `None` means linear.
        recurrent_activation: Activation of the gates `i`, `f`, `o`.
            Default: `"sigmoid"`. `"keras2_hard_sigmoid"` gives Keras 2's
            `clip(0.2 x + 0.5, 0, 1)` (Keras 3's `"hard_sigmoid"` is
            `clip(x / 6 + 0.5, 0, 1)`).
        use_bias: Boolean, whether the layer uses a bias vector. Default:
            `True`.
        kernel_initializer: Initializer for `kernel`, the input weights of
            shape `(input_dim, 4 * units)`. Default: `"glorot_uniform"`.
        recurrent_initializer: Initializer for `recurrent_kernel`, of shape
            `(units, 4 * units)`. Default: `"orthogonal"`.
        bias_initializer: Initializer for `bias`, of shape `(4 * units,)`.
            Default: `"zeros"`.
        unit_forget_bias: Boolean. If `True`, the forget gate's slice of the
            bias is initialised to ones (Jozefowicz et al. 2015), the other
            slices with `bias_initializer`. Default: `True`.
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
            mask at every timestep. Default: 0.
        implementation: 1 or 2. 1 multiplies each gate separately (four
            input and four recurrent products, Keras 2's low-memory mode,
            one dropout mask per gate); 2 does one fused product and splits
            it into the gates. Both give the same numbers. With
            `recurrent_dropout > 0` the per-gate route is taken, as in Keras.
            Keras 2.0's `0` is read as 1. Default: 2."""

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
        use_cudnn: `"auto"`, `True` or `False`. On a GPU with the
            TensorFlow backend and the plain configuration (tanh, sigmoid,
            bias, no recurrent dropout, not unrolled), `"auto"` runs the
            backend's cuDNN kernel, which computes the same function; `True`
            requires it. Default: `"auto"`.
        **kwargs: base-layer arguments (`name`, `dtype`, `trainable`,
            `input_shape`, ...) and `keras.layers.RNN`'s
            `zero_output_for_mask`."""


def lstm_gates(z, c_tm1, activation, recurrent_activation):
    """The LSTM nonlinearity: from the four gate pre-activations to (h, c)."""
    z_i, z_f, z_c, z_o = z
    i = recurrent_activation(z_i)
    f = recurrent_activation(z_f)
    c = f * c_tm1 + i * activation(z_c)
    o = recurrent_activation(z_o)
    return o * activation(c), c


@SERIALIZABLE
class LSTMCell(GatedCell):
    __doc__ = (
        """Long Short-Term Memory cell: one time step of `krp.LSTM`.

    A reimplementation of `keras.layers.LSTMCell` with the same arguments,
    defaults, weights (`kernel`, `recurrent_kernel`, `bias`; gate order
    i, f, c, o) and numbers, plus `implementation`. Use it inside
    `keras.layers.RNN`, or use `krp.LSTM`, which is faster.

    Equations (`σ` = `recurrent_activation`, `act` = `activation`):

        [i, f, g, o] = x(t) kernel + h(t-1) recurrent_kernel + bias
        i, f, o = σ(i), σ(f), σ(o);  g = act(g)
        c(t) = f * c(t-1) + i * g
        h(t) = o * act(c(t))

    Args:"""
        + _ARGS_DOC.format(act="")
        + """
        seed: Integer seed of the dropout masks. Default: `None`.
        **kwargs: base-layer arguments (`name`, `dtype`, `trainable`).

    Call arguments:
        inputs: A 2D tensor `(batch, features)`.
        states: List `[h, c]` of two tensors `(batch, units)`.
        training: Python boolean, whether dropout applies.

    Returns:
        `h` of shape `(batch, units)` and the new states `[h, c]`.

    Example:

    >>> import numpy as np, keras
    >>> import keras_rnn_plus as krp
    >>> rnn = keras.layers.RNN(krp.LSTMCell(4), return_state=True)
    >>> out, h, c = rnn(np.zeros((2, 5, 3), "float32"))
    >>> tuple(out.shape), tuple(c.shape)
    ((2, 4), (2, 4))
    """
    )

    num_gates = 4

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
        self.unit_forget_bias = bool(unit_forget_bias)
        self.state_size = [self.units, self.units]
        self.output_size = self.units

    def _bias_initializer(self):
        if not self.unit_forget_bias:
            return self.bias_initializer
        init, units = self.bias_initializer, self.units

        def bias_with_unit_forget(_, *args, **kwargs):
            return ops.concatenate(
                [
                    init((units,), *args, **kwargs),
                    keras.initializers.Ones()((units,), *args, **kwargs),
                    init((2 * units,), *args, **kwargs),
                ]
            )

        return bias_with_unit_forget

    def recurrent_step(self, z, states, training=False):
        h_tm1, c_tm1 = states[0], states[1]
        r = self.recurrent_products(h_tm1, training=training)
        if self.per_gate:
            gates = [a + b for a, b in zip(ops.split(z, 4, axis=-1), r)]
        else:
            gates = ops.split(z + r, 4, axis=-1)
        h, c = lstm_gates(
            gates, c_tm1, self.activation, self.recurrent_activation
        )
        return h, [h, c]

    def argument_config(self):
        config = super().argument_config()
        config["unit_forget_bias"] = self.unit_forget_bias
        return config


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

    The input products `x(t) W + b` of all timesteps are computed in one
    product before the time loop; the loop does only the recurrent part.
    On a GPU the plain configuration runs the backend's cuDNN kernel (see
    `use_cudnn`).

    Args:"""
        + _ARGS_DOC.format(
            act="""
        activity_regularizer: Regularizer applied to the layer's output.
            Default: `None`."""
        )
        + _LAYER_ARGS_DOC
        + """

    Call arguments:
        inputs: A 3D tensor `(batch, timesteps, features)`.
        mask: Optional boolean tensor `(batch, timesteps)`; `False` skips a
            timestep (the states are carried over). Masks from `Masking` or
            `Embedding(mask_zero=True)` are used automatically.
        training: Python boolean, whether dropout applies.
        initial_state: Optional list `[h, c]` of two tensors
            `(batch, units)`; zeros by default.

    Input shape:
        `(batch, timesteps, features)`.

    Output shape:
        `(batch, timesteps, units)` with `return_sequences`, else
        `(batch, units)`; with `return_state`, followed by the final `h` and
        `c`, each `(batch, units)`.

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
        if self._cudnn_possible():
            self.supports_jit = False  # cuDNN ops cannot be XLA-compiled

    def _cudnn_possible(self):
        cell = self.cell
        return (
            self.use_cudnn in ("auto", True)
            and keras.backend.backend() == "tensorflow"
            and not cell.recurrent_dropout
            and _backend.cudnn_ok(
                cell.activation,
                cell.recurrent_activation,
                self.unroll,
                cell.use_bias,
            )
        )

    def _fused_backend_loop(self, sequences, initial_state, mask, training):
        if not self._cudnn_possible():
            return None
        cell = self.cell
        if training and cell.dropout:
            mask0 = cell.get_dropout_mask(sequences[:, 0, :])
            if cell.per_gate:  # the fused kernel has one input per step
                return None
            sequences = sequences * ops.expand_dims(mask0, 1)
        try:
            return _backend.lstm(
                sequences,
                initial_state[0],
                initial_state[1],
                mask,
                kernel=cell.kernel,
                recurrent_kernel=cell.recurrent_kernel,
                bias=cell.bias,
                activation=cell.activation,
                recurrent_activation=cell.recurrent_activation,
                return_sequences=self.return_sequences,
                go_backwards=self.go_backwards,
                unroll=self.unroll,
            )
        except NotImplementedError:
            return None
