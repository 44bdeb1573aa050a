"""GRU: the cell (one time step) and the layer (the cell over a sequence).

Gate order z (update), r (reset), h (candidate) as in Keras (`W` =
`kernel`, `U` = `recurrent_kernel`, `b` = input bias, `b'` = recurrent
bias, `σ` = `recurrent_activation`, `act` = `activation`).

`reset_after=False`, the GRU of Cho et al. 2014 (arXiv:1406.1078): the
reset gate scales the state before the recurrent product.

    z(t) = σ(x(t) W_z + h(t-1) U_z + b_z)
    r(t) = σ(x(t) W_r + h(t-1) U_r + b_r)
    g(t) = act(x(t) W_h + (r(t) * h(t-1)) U_h + b_h)
    h(t) = z(t) * h(t-1) + (1 - z(t)) * g(t)

`reset_after=True` (the default), the cuDNN-compatible form: the reset gate
scales the recurrent product, which has its own bias `b'`.

    z(t) = σ(x(t) W_z + b_z + h(t-1) U_z + b'_z)
    r(t) = σ(x(t) W_r + b_r + h(t-1) U_r + b'_r)
    g(t) = act(x(t) W_h + b_h + r(t) * (h(t-1) U_h + b'_h))
    h(t) = z(t) * h(t-1) + (1 - z(t)) * g(t)
"""

from keras import ops
from keras.src import backend as _backend

from keras_rnn_plus import _args, deploy
from keras_rnn_plus._base import (
    SERIALIZABLE,
    GatedCell,
    RecurrentLayer,
    StepOps,
    dropout_applies,
    expose_cell_arguments,
)

_ARGS_DOC = """
        units: Positive integer, dimensionality of the output space.
        activation: Activation of the candidate `g`. Default: `"tanh"`.
            `None` means linear.
        recurrent_activation: Activation of the gates `z` and `r`.
            Default: `"sigmoid"`. `"keras2_hard_sigmoid"` gives Keras 2's
            `clip(0.2 x + 0.5, 0, 1)` (Keras 3's `"hard_sigmoid"` is
            `clip(x / 6 + 0.5, 0, 1)`).
        use_bias: Boolean, whether the layer uses a bias vector. Default:
            `True`.
        kernel_initializer: Initializer for `kernel`, the input weights of
            shape `(input_dim, 3 * units)`. Default: `"glorot_uniform"`.
        recurrent_initializer: Initializer for `recurrent_kernel`, of shape
            `(units, 3 * units)`. Default: `"orthogonal"`.
        bias_initializer: Initializer for `bias`, of shape `(3 * units,)`,
            or `(2, 3 * units)` (input bias, recurrent bias) with
            `reset_after=True`. Default: `"zeros"`.
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
            mask at every timestep. Default: 0.{impl}"""

_IMPL_DOC = """
        implementation: 1 or 2. 1 multiplies each gate separately (three
            input and three recurrent products, Keras 2's low-memory mode,
            one dropout mask per gate); 2 does one fused product and splits
            it into the gates. Both give the same numbers. With
            `recurrent_dropout > 0` the per-gate route is taken, as in Keras.
            Keras 2.0's `0` is read as 1 from a saved config. Default: 2."""

_RESET_AFTER_DOC = """
        reset_after: Boolean, where the reset gate applies: `False` before
            the recurrent product (Cho et al. 2014, bias `(3 * units,)`),
            `True` after it (cuDNN-compatible, separate recurrent bias,
            bias `(2, 3 * units)`). Default: `True`."""

_LAYER_ARGS_DOC = """
        seed: Integer seed of the dropout masks. Default: `None`.
        return_sequences: Boolean, return the whole output sequence rather
            than the last output. Default: `False`.
        return_state: Boolean, also return the final state `h`.
            Default: `False`.
        go_backwards: Boolean, process the sequence backwards (and return the
            reversed output sequence). Default: `False`.
        stateful: Boolean: the final state of a batch is the initial state
            of the next; needs a fixed batch size. Reset with
            `reset_state()`. Default: `False`.
        unroll: Boolean, unroll the time loop (short sequences only; needs a
            known number of timesteps). Default: `False`."""

_CUDNN_DOC = """
        use_cudnn: `"auto"`, `True` or `False`. On a GPU (with the
            TensorFlow, PyTorch or JAX backend, as Keras's layers) and the
            cuDNN configuration (tanh, sigmoid, bias, `reset_after=True`,
            no recurrent dropout, not unrolled, right-padded masks),
            `"auto"` runs the backend's cuDNN kernel, which computes the
            same function; `True` requires it. Default: `"auto"`."""

_KWARGS_DOC = """
        **kwargs: base-layer arguments (`name`, `dtype`, `trainable`,
            `input_shape`, ...) and `keras.layers.RNN`'s
            `zero_output_for_mask`."""


def gru_update(z, h_tm1, candidate):
    """The GRU state update: `z * h(t-1) + (1 - z) * candidate`."""
    return z * h_tm1 + (1 - z) * candidate


@SERIALIZABLE
class GRUCell(GatedCell):
    __doc__ = (
        """Gated Recurrent Unit cell: one time step of `krp.GRU`.

    A reimplementation of `keras.layers.GRUCell` with the same arguments,
    defaults, weights (`kernel`, `recurrent_kernel`, `bias`; gate order
    z, r, h) and numbers, plus `implementation`. Use it inside
    `keras.layers.RNN`, or use `krp.GRU`, which is faster.

    Equations (`σ` = `recurrent_activation`, `act` = `activation`; `W`,
    `U`, `b` = `kernel`, `recurrent_kernel`, `bias`, and `_z`, `_r`, `_h`
    their slices, in that order). With `reset_after=False` (Cho et al.
    2014), the reset gate applies before the recurrent product:

        z = σ(x W_z + h(t-1) U_z + b_z)
        r = σ(x W_r + h(t-1) U_r + b_r)
        g = act(x W_h + (r * h(t-1)) U_h + b_h)
        h(t) = z * h(t-1) + (1 - z) * g

    With `reset_after=True` (cuDNN-compatible), it applies after the
    product, which has its own bias (`b` = `bias[0]`, `b'` = `bias[1]`):

        z = σ(x W_z + b_z + h(t-1) U_z + b'_z)
        r = σ(x W_r + b_r + h(t-1) U_r + b'_r)
        g = act(x W_h + b_h + r * (h(t-1) U_h + b'_h))
        h(t) = z * h(t-1) + (1 - z) * g

    Args:"""
        + _ARGS_DOC.format(act="", impl="")
        + _RESET_AFTER_DOC
        + """
        seed: Integer seed of the dropout masks. Default: `None`."""
        + _IMPL_DOC
        + """
        **kwargs: base-layer arguments (`name`, `dtype`, `trainable`).

    Call arguments:
        inputs: A 2D tensor `(batch, features)`.
        states: The state `h` `(batch, units)`, or a list `[h]`.
        training: Python boolean, whether dropout applies.

    Returns:
        `h` of shape `(batch, units)` and the new state, `[h]` if the
        state came as a list, else `h`.

    Example:

    >>> import numpy as np, keras
    >>> import keras_rnn_plus as krp
    >>> rnn = keras.layers.RNN(krp.GRUCell(4), return_state=True)
    >>> out, h = rnn(np.zeros((2, 5, 3), "float32"))
    >>> tuple(out.shape), tuple(h.shape)
    ((2, 4), (2, 4))
    """
    )

    num_gates = 3
    keras2_missing = {"reset_after": False}  # Keras before 2.1.3

    def __init__(
        self,
        units,
        activation="tanh",
        recurrent_activation="sigmoid",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        reset_after=True,
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
        self.reset_after = _args.boolean("reset_after", reset_after)
        self.state_size = self.units
        self.output_size = self.units

    # -- weights -------------------------------------------------------------
    def _bias_shape(self):
        if self.reset_after:
            return (2, 3 * self.units)
        return (3 * self.units,)

    def _input_bias(self):
        if self.bias is None or not self.reset_after:
            return self.bias
        return self.bias[0]

    def _recurrent_bias(self):
        if self.bias is None or not self.reset_after:
            return None
        return self.bias[1]

    # -- the recurrent half of a step -----------------------------------------
    def recurrent_step(self, z, states, training=False, step_ops=StepOps):
        nested = isinstance(states, (list, tuple))
        h_tm1 = states[0] if nested else states
        x_z, x_r, x_h = step_ops.split(z, 3)
        if self.per_gate:  # one product per gate, each with its own mask
            rec_z, rec_r, rec_h, h_h, kernel_h = self._per_gate_products(
                h_tm1, training
            )
        elif self.reset_after:  # one product for the three gates
            rec = step_ops.matmul(h_tm1, self.recurrent_kernel)
            bias = self._recurrent_bias()
            if bias is not None:
                rec = rec + bias
            rec_z, rec_r, rec_h = step_ops.split(rec, 3)
        else:  # one product for z and r; the candidate's needs r first
            h_h = h_tm1
            kernel_zr, kernel_h = ops.split(
                self.recurrent_kernel, [2 * self.units], axis=-1
            )
            rec_z, rec_r = ops.split(ops.matmul(h_tm1, kernel_zr), 2, axis=-1)
        sigma = step_ops.activation(self.recurrent_activation)
        update = sigma(x_z + rec_z)
        reset = sigma(x_r + rec_r)
        if self.reset_after:  # reset applied after the product
            rec_h = reset * rec_h
        else:  # reset applied before the product (Cho et al. 2014)
            rec_h = ops.matmul(reset * h_h, kernel_h)
        act = step_ops.activation(self.activation)
        h = gru_update(update, h_tm1, act(x_h + rec_h))
        return h, ([h] if nested else h)

    def onnx_step(self):
        """The cuDNN-form GRU (`reset_after=True`) as tf2onnx recognises
        Keras 2's (one ONNX `GRU` op, `linear_before_reset=1`): each
        product with its own bias (zero without one), the gates split from
        them. With `reset_after=False` (ONNX's `linear_before_reset=0`)
        tf2onnx knows only TensorFlow 1's `GRUCell`, whose pattern needs
        variable reads inside the loop: no native op then."""
        import tensorflow as tf

        sigma = deploy.onnx_activation(self.recurrent_activation)
        act = deploy.onnx_activation(self.activation)
        if not self.reset_after or sigma is not tf.sigmoid or act is None:
            return None
        kernel = ops.convert_to_tensor(self.kernel)
        recurrent_kernel = ops.convert_to_tensor(self.recurrent_kernel)
        if self.bias is None:
            bias = tf.zeros(self._bias_shape(), kernel.dtype)
        else:
            bias = ops.convert_to_tensor(self.bias)
        return _onnx_step_reset_after(kernel, recurrent_kernel, bias, act)

    def _per_gate_products(self, h_tm1, training):
        """The z, r and (with `reset_after`) candidate recurrent products,
        recurrent bias included; and for the candidate's product before the
        reset (`reset_after=False`), its input `h(t-1)` (after its dropout
        mask) and its kernel slice."""
        h_z, h_r, h_h = self._recurrent_dropped(h_tm1, training)
        kernel_z, kernel_r, kernel_h = ops.split(
            self.recurrent_kernel, 3, axis=-1
        )
        rec_z = ops.matmul(h_z, kernel_z)
        rec_r = ops.matmul(h_r, kernel_r)
        rec_h = ops.matmul(h_h, kernel_h) if self.reset_after else None
        bias = self._recurrent_bias()
        if bias is not None:
            b_z, b_r, b_h = ops.split(bias, 3, axis=-1)
            rec_z, rec_r, rec_h = rec_z + b_z, rec_r + b_r, rec_h + b_h
        return rec_z, rec_r, rec_h, h_h, kernel_h

    def _recurrent_dropped(self, h_tm1, training):
        """`h(t-1)` as the z, r and candidate products see it: times that
        gate's recurrent dropout mask in training."""
        if dropout_applies(training, self.recurrent_dropout):
            masks = self.get_recurrent_dropout_mask(h_tm1)
            return [h_tm1 * m for m in masks]
        return [h_tm1] * 3

    # -- config ---------------------------------------------------------------
    def argument_config(self):
        config = super().argument_config()
        config["reset_after"] = self.reset_after
        return config


def _onnx_step_reset_after(kernel, recurrent_kernel, bias, act):
    """The step of `GRUCell.onnx_step`."""
    import tensorflow as tf

    input_bias, recurrent_bias = tf.unstack(bias)

    def step(x, states):
        h_tm1 = states[0]
        x_z, x_r, x_h = tf.split(
            tf.nn.bias_add(tf.matmul(x, kernel), input_bias), 3, axis=1
        )
        h_z, h_r, h_h = tf.split(
            tf.nn.bias_add(tf.matmul(h_tm1, recurrent_kernel), recurrent_bias),
            3,
            axis=1,
        )
        update = tf.sigmoid(x_z + h_z)
        reset = tf.sigmoid(x_r + h_r)
        h = update * h_tm1 + (1.0 - update) * act(x_h + reset * h_h)
        return h, (h,)

    return step


@SERIALIZABLE
class GRU(RecurrentLayer):
    __doc__ = (
        """Gated Recurrent Unit layer (Cho et al. 2014).

    A drop-in reimplementation of `keras.layers.GRU`: the same arguments
    and defaults, the same weights (`kernel` `(input_dim, 3 * units)`,
    `recurrent_kernel` `(units, 3 * units)`, `bias` `(3 * units,)`, or
    `(2, 3 * units)` with `reset_after=True`; gate order z, r, h), so
    `set_weights` and `.weights.h5` files move freely between the two, and
    the same outputs, states and gradients.

    Equations (`σ` = `recurrent_activation`, `act` = `activation`).
    With `reset_after=False`, the original GRU of Cho et al. 2014, the
    reset gate is applied before the recurrent product:

        z(t) = σ(x(t) W_z + h(t-1) U_z + b_z)
        r(t) = σ(x(t) W_r + h(t-1) U_r + b_r)
        g(t) = act(x(t) W_h + (r(t) * h(t-1)) U_h + b_h)
        h(t) = z(t) * h(t-1) + (1 - z(t)) * g(t)

    With `reset_after=True` (the default; cuDNN-compatible), it is applied
    after the recurrent product, which has its own bias `b'`
    (`bias[1]`; `b` is `bias[0]`):

        z(t) = σ(x(t) W_z + b_z + h(t-1) U_z + b'_z)
        r(t) = σ(x(t) W_r + b_r + h(t-1) U_r + b'_r)
        g(t) = act(x(t) W_h + b_h + r(t) * (h(t-1) U_h + b'_h))
        h(t) = z(t) * h(t-1) + (1 - z(t)) * g(t)

    On a GPU the cuDNN configuration runs the backend's cuDNN kernel (see
    `use_cudnn`).

    Args:"""
        + _ARGS_DOC.format(
            act="""
        activity_regularizer: Regularizer applied to the layer's output.
            Default: `None`.""",
            impl="",
        )
        + _LAYER_ARGS_DOC
        + _RESET_AFTER_DOC
        + _CUDNN_DOC
        + _IMPL_DOC  # last in the signature, after Keras's arguments
        + _KWARGS_DOC
        + """

    Call arguments:
        inputs: A 3D tensor `(batch, timesteps, features)`.
        mask: Optional boolean tensor `(batch, timesteps)`; `False` skips a
            timestep (the state is carried over). Masks from `Masking` or
            `Embedding(mask_zero=True)` are used automatically.
        training: Python boolean, whether dropout applies.
        initial_state: Optional tensor `(batch, units)`, or a list of one;
            zeros by default.

    Input shape:
        `(batch, timesteps, features)`.

    Output shape:
        `(batch, timesteps, units)` with `return_sequences`, else
        `(batch, units)`; with `return_state`, followed by the final `h`
        `(batch, units)`.

    Example:

    >>> import numpy as np
    >>> import keras_rnn_plus as krp
    >>> x = np.random.random((32, 10, 8)).astype("float32")
    >>> gru = krp.GRU(4, return_sequences=True, return_state=True)
    >>> seq, h = gru(x)
    >>> tuple(seq.shape), tuple(h.shape)
    ((32, 10, 4), (32, 4))
    >>> classic = krp.GRU(4, reset_after=False)  # Cho et al. 2014
    >>> tuple(classic(x).shape)
    (32, 4)
    """
    )

    keras2_missing = GRUCell.keras2_missing

    def __init__(
        self,
        units,
        activation="tanh",
        recurrent_activation="sigmoid",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        seed=None,
        return_sequences=False,
        return_state=False,
        go_backwards=False,
        stateful=False,
        unroll=False,
        reset_after=True,
        use_cudnn="auto",
        implementation=2,
        **kwargs,
    ):
        cell = GRUCell(
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
            reset_after=reset_after,
            seed=seed,
            implementation=implementation,
            dtype=kwargs.get("dtype"),
            trainable=kwargs.get("trainable", True),
            name="gru_cell",
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
        return _backend.gru, {"reset_after": self.cell.reset_after}


expose_cell_arguments(GRU, GRUCell)
