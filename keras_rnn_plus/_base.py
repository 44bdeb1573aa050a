"""What every gated cell and recurrent layer of the package shares.

A cell computes one time step in two halves:

- `project_inputs(x)`: the input product `x @ kernel (+ bias)`, for one
  step `(batch, features)` or a whole time-major sequence
  `(timesteps, batch, features)`.
- `recurrent_step(z, states)`: everything that depends on the previous
  state, given the projected input `z` of one step.

`call(x, states)` is the two halves in a row. `RecurrentLayer.inner_loop`
runs `call` at every step, as Keras does. On the PyTorch backend, which
runs eagerly, the input half of every step is computed before the loop,
which runs only `recurrent_step`, when there is no mask
(`RecurrentLayer._eager_loop`). Both routes compute the same function.
"""

import contextlib
import functools
import inspect
import threading
import warnings

import keras
from keras import ops
from keras.src import backend as _backend
from keras.src.layers.rnn.dropout_rnn_cell import DropoutRNNCell

from keras_rnn_plus import _args, deploy

SERIALIZABLE = keras.saving.register_keras_serializable(
    package="keras_rnn_plus"
)


class StepOps:
    """The operations of a step's hot path, through `keras.ops` (any
    backend, eager or traced)."""

    @staticmethod
    def matmul(x, kernel):
        return ops.matmul(x, kernel)

    @staticmethod
    def add_bias(z, bias):
        return ops.add(z, bias)  # `BiasAdd` in TensorFlow, as Keras

    @staticmethod
    def split(z, parts):
        return ops.split(z, parts, axis=-1)

    @staticmethod
    def activation(fn):
        return fn


class TorchStepOps(StepOps):
    """The same operations as plain PyTorch ones, for PyTorch's eager loop
    in float32, where they compute what `keras.ops` computes (bit for bit)
    without its per-call dispatch, which costs more than the arithmetic of
    a small step."""

    @staticmethod
    def matmul(x, kernel):
        return x @ _value(kernel)

    @staticmethod
    def add_bias(z, bias):
        return z + _value(bias)

    @staticmethod
    def split(z, parts):
        return z.chunk(parts, -1)

    @staticmethod
    def activation(fn):
        return _torch_activations().get(fn, fn)


@functools.cache
def _torch_activations():
    """Keras's `sigmoid` and `tanh`, mapped to the PyTorch functions they
    run (built once, not on every step)."""
    import torch

    return {keras.activations.sigmoid: torch.sigmoid,
            keras.activations.tanh: torch.tanh}


def dropout_applies(training, rate):
    """Whether a dropout of `rate` applies in the loop: in training, for
    rates strictly between 0 and 1, as in Keras's loop (which drops
    nothing at a rate of 1)."""
    return training and 0 < rate < 1


def _value(tensor):
    return tensor.value if isinstance(tensor, keras.Variable) else tensor


_this_thread = threading.local()  # `_weights_read_once`'s reads


class ReadOnceWeight:
    """A cell's weight attribute: the variable, except in the thread that
    is inside `_weights_read_once` for that cell, which sees the tensors
    read there. Other threads calling or tracing the same layer meanwhile
    see the variables."""

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, cell, owner=None):
        if cell is None:
            return self
        reads = getattr(_this_thread, "reads", {}).get(id(cell), {})
        if self.name in reads:
            return reads[self.name]
        try:
            return cell.__dict__[self.name]
        except KeyError:
            raise AttributeError(
                f"{type(cell).__name__!r} object has no attribute "
                f"{self.name!r} (not built, or not of this configuration)"
            ) from None

    def __set__(self, cell, value):
        cell.__dict__[self.name] = value

    def __delete__(self, cell):
        try:
            del cell.__dict__[self.name]
        except KeyError:
            raise AttributeError(self.name) from None


@contextlib.contextmanager
def _weights_read_once(cell, batch_size):
    """Within it, in this thread, the cell's weights are tensors read here,
    once: a TensorFlow time loop then captures them instead of reading
    every variable at every step, as Keras's loop does. Vector weights
    other than the bias (peepholes, layer-norm scales and offsets), which
    scale or offset `(batch, n)` tensors at every step, are broadcast to
    that shape here, so that each step's gradient is a product, not a sum
    over the batch (the batch sum then happens once, after the loop). The
    same values and gradients, with fewer operations per step."""
    import tensorflow as tf

    reads = {}
    for name, variable in vars(cell).items():
        if (isinstance(variable, keras.Variable)
                and isinstance(getattr(type(cell), name, None),
                               ReadOnceWeight)):
            value = tf.identity(variable.value)
            if len(value.shape) == 1 and name != "bias":
                value = tf.broadcast_to(value, (batch_size, value.shape[0]))
            reads[name] = value
    if not hasattr(_this_thread, "reads"):
        _this_thread.reads = {}
    outer = _this_thread.reads.get(id(cell))
    _this_thread.reads[id(cell)] = reads
    try:
        yield
    finally:
        if outer is None:
            del _this_thread.reads[id(cell)]
        else:
            _this_thread.reads[id(cell)] = outer


def _matmul(x, kernel):
    """`x @ kernel` for `x` of rank 2 or 3, as one 2D product (a batched
    product would broadcast the kernel, and its gradient would sum a copy
    of the kernel's gradient per timestep)."""
    if len(x.shape) == 2:
        return ops.matmul(x, kernel)
    shape = ops.shape(x)
    flat = ops.matmul(ops.reshape(x, (-1, shape[-1])), kernel)
    return ops.reshape(flat, (shape[0], shape[1], kernel.shape[-1]))


class GatedCell(keras.layers.Layer, DropoutRNNCell):
    """Base of the LSTM and GRU cells: weights, dropout masks, config.

    Subclasses set `num_gates` (on the class or the instance) and
    implement `recurrent_step`; they may override `_bias_shape()` and
    `_bias_initializer()`.
    """

    num_gates = None  # set by subclasses
    kernel = ReadOnceWeight()
    recurrent_kernel = ReadOnceWeight()
    bias = ReadOnceWeight()

    def __init__(
        self,
        units,
        activation,
        recurrent_activation,
        use_bias,
        kernel_initializer,
        recurrent_initializer,
        bias_initializer,
        kernel_regularizer,
        recurrent_regularizer,
        bias_regularizer,
        kernel_constraint,
        recurrent_constraint,
        bias_constraint,
        dropout,
        recurrent_dropout,
        seed,
        implementation,
        **kwargs,
    ):
        super().__init__(**_args.base_layer_kwargs(kwargs))
        for kind in ("compute", "variable"):
            dtype = getattr(self.dtype_policy, f"{kind}_dtype")
            if not keras.backend.is_float_dtype(dtype):
                raise ValueError(
                    "dtype must be a floating-point type or policy, got "
                    f"{kind} dtype {dtype!r} for {type(self).__name__}"
                )
        self.units = _args.positive_int("units", units)
        self.activation = _args.activation("activation", activation)
        self.recurrent_activation = _args.activation(
            "recurrent_activation", recurrent_activation
        )
        self.use_bias = _args.boolean("use_bias", use_bias)
        get_init, get_reg, get_con = (
            _args.initializer,
            _args.regularizer,
            _args.constraint,
        )
        self.kernel_initializer = get_init(
            "kernel_initializer", kernel_initializer
        )
        self.recurrent_initializer = get_init(
            "recurrent_initializer", recurrent_initializer
        )
        self.bias_initializer = get_init("bias_initializer", bias_initializer)
        self.kernel_regularizer = get_reg(
            "kernel_regularizer", kernel_regularizer
        )
        self.recurrent_regularizer = get_reg(
            "recurrent_regularizer", recurrent_regularizer
        )
        self.bias_regularizer = get_reg("bias_regularizer", bias_regularizer)
        self.kernel_constraint = get_con("kernel_constraint", kernel_constraint)
        self.recurrent_constraint = get_con(
            "recurrent_constraint", recurrent_constraint
        )
        self.bias_constraint = get_con("bias_constraint", bias_constraint)
        self.dropout = _args.rate("dropout", dropout)
        self.recurrent_dropout = _args.rate(
            "recurrent_dropout", recurrent_dropout
        )
        self.seed = _args.seed(seed)
        self.seed_generator = keras.random.SeedGenerator(seed=self.seed)
        self.implementation = _args.implementation(implementation)
        # As in Keras, recurrent dropout draws one mask per gate, which needs
        # one product per gate: the per-gate route (mode 1) is then taken
        # whatever `implementation` says (the config keeps the user's value).
        self.per_gate = self.implementation == 1 or self.recurrent_dropout > 0

    @property
    def dropout_mask_count(self):
        """Masks drawn per dropout: one per gate in the per-gate mode."""
        return self.num_gates if self.per_gate else None

    # -- weights ---------------------------------------------------------
    def build(self, input_shape):
        input_dim = input_shape[-1]
        if input_dim is None:
            raise ValueError(
                f"{type(self).__name__} needs a known feature size "
                f"(last input dimension), got input shape {input_shape}"
            )
        n = self.num_gates * self.units
        self.kernel = self.add_weight(
            shape=(input_dim, n),
            name="kernel",
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )
        self.recurrent_kernel = self.add_weight(
            shape=(self._recurrent_input_size(), n),
            name="recurrent_kernel",
            initializer=self.recurrent_initializer,
            regularizer=self.recurrent_regularizer,
            constraint=self.recurrent_constraint,
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                shape=self._bias_shape(),
                name="bias",
                initializer=self._bias_initializer(),
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )
        self.input_dim = input_dim

    def _recurrent_input_size(self):
        return self.units

    def _bias_shape(self):
        return (self.num_gates * self.units,)

    def _bias_initializer(self):
        return self.bias_initializer

    def _input_bias(self):
        return self.bias

    # -- the two halves of a step ------------------------------------------
    def project_inputs(self, inputs, training=False):
        """`inputs @ kernel + input bias`, for one step `(batch, features)`
        or a whole time-major sequence `(timesteps, batch, features)`.

        With input dropout in training, each gate's product sees the
        inputs times that gate's mask (one mask shared by all gates in the
        fused mode), the same mask at every timestep.
        """
        masks = None
        if dropout_applies(training, self.dropout):
            sequence = len(inputs.shape) == 3
            masks = self.get_dropout_mask(inputs[0] if sequence else inputs)
            if sequence:  # the same (batch, features) mask at every step
                masks = (
                    [m[None] for m in masks] if self.per_gate else masks[None]
                )
        if not self.per_gate:
            x = inputs if masks is None else inputs * masks
            z = _matmul(x, self.kernel)
        else:
            kernels = ops.split(self.kernel, self.num_gates, axis=-1)
            z = ops.concatenate(
                [
                    _matmul(inputs if masks is None else inputs * m, k)
                    for k, m in zip(kernels, masks or [None] * len(kernels))
                ],
                axis=-1,
            )
        z = self._normalize_input_product(z)
        bias = self._input_bias()
        if bias is None:
            return z
        # As Keras: one `BiasAdd` in the fused mode (its gradient sums in
        # float32 under mixed precision), a plain sum per gate.
        return z + bias if self.per_gate else ops.add(z, bias)

    def _normalize_input_product(self, z):
        """Hook for variants that transform `x @ kernel` before the bias."""
        return z

    def recurrent_products(self, h, training=False, step_ops=StepOps):
        """`h @ recurrent_kernel`: one tensor in the fused mode; in the
        per-gate mode a list with one product per gate, each with that
        gate's recurrent dropout mask in training.
        """
        if not self.per_gate:
            return step_ops.matmul(h, self.recurrent_kernel)
        masks = None
        if dropout_applies(training, self.recurrent_dropout):
            masks = self.get_recurrent_dropout_mask(h)
        kernels = ops.split(self.recurrent_kernel, self.num_gates, axis=-1)
        return [
            ops.matmul(h if masks is None else h * masks[g], k)
            for g, k in enumerate(kernels)
        ]

    def call(self, inputs, states, training=False):
        z = self.project_inputs(inputs, training=training)
        return self.recurrent_step(z, states, training=training)

    def recurrent_step(self, z, states, training=False, step_ops=StepOps):
        """The rest of a step, given `z`, the step's input products
        (`project_inputs`); `step_ops` computes its hot operations."""
        raise NotImplementedError

    def onnx_step(self):
        """An inference step `(x, states) -> (output, states)` computing
        `call`'s function with the ops tf2onnx turns into one native ONNX
        `LSTM` / `GRU` op (with `deploy.onnx_native_loop`), or `None` where
        ONNX has no such op for this configuration (then the export is a
        `Loop`). TensorFlow backend only."""
        return None

    def get_initial_state(self, batch_size=None):
        sizes = self.state_size
        sizes = sizes if isinstance(sizes, (list, tuple)) else [sizes]
        return [
            ops.zeros((batch_size, d), dtype=self.compute_dtype)
            for d in sizes
        ]

    # -- config -------------------------------------------------------------
    def get_config(self):
        return {**super().get_config(), **self.argument_config()}

    # Arguments that a Keras 2 config written before they existed meant to
    # have, where Keras 3's default differs (see `_read_keras2_config`).
    keras2_missing = {}

    @classmethod
    def from_config(cls, config):
        """Also reads Keras 2 cell configs (see `_read_keras2_config`)."""
        with _args.reading_config():
            return super().from_config(
                _read_keras2_config(config, cls.keras2_missing)
            )

    def argument_config(self):
        """The constructor arguments of this cell (no base-layer keys)."""
        ser = keras.saving.serialize_keras_object
        return {
            "units": self.units,
            "activation": _args.serialize_activation(self.activation),
            "recurrent_activation": _args.serialize_activation(
                self.recurrent_activation
            ),
            "use_bias": self.use_bias,
            "kernel_initializer": ser(self.kernel_initializer),
            "recurrent_initializer": ser(self.recurrent_initializer),
            "bias_initializer": ser(self.bias_initializer),
            "kernel_regularizer": ser(self.kernel_regularizer),
            "recurrent_regularizer": ser(self.recurrent_regularizer),
            "bias_regularizer": ser(self.bias_regularizer),
            "kernel_constraint": ser(self.kernel_constraint),
            "recurrent_constraint": ser(self.recurrent_constraint),
            "bias_constraint": ser(self.bias_constraint),
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "seed": self.seed,
            "implementation": self.implementation,
        }


class RecurrentLayer(keras.layers.RNN):
    """A `keras.layers.RNN` over one of our cells, with checked inputs, the
    backend's cuDNN kernel where it computes the same function, and a time
    loop that converters can export (`deploy.rnn_loop`)."""

    keras2_missing = {}  # as `GatedCell.keras2_missing`

    def __init__(self, cell, use_cudnn="auto", **kwargs):
        for key in ("return_sequences", "return_state", "go_backwards",
                    "stateful", "unroll", "zero_output_for_mask"):
            if key in kwargs:
                kwargs[key] = _args.boolean(key, kwargs[key])
        # Keras 2 configs: `time_major` (always False there) and
        # `batch_input_shape`, which Keras 3 spells `input_shape`.
        if _args.boolean("time_major", kwargs.pop("time_major", False)):
            raise ValueError(
                "time_major=True is not supported: pass inputs as "
                "(batch, timesteps, features)"
            )
        batch_input_shape = kwargs.pop("batch_input_shape", None)
        if batch_input_shape is not None:
            batch_input_shape = _args.batch_input_shape(batch_input_shape)
            input_shape = kwargs.setdefault(
                "input_shape", batch_input_shape[1:]
            )
            if tuple(input_shape) != batch_input_shape[1:]:
                raise ValueError(
                    f"input_shape={input_shape!r} contradicts "
                    f"batch_input_shape={batch_input_shape!r}: give one"
                )
        super().__init__(cell, **_args.base_layer_kwargs(kwargs))
        # Keras 3's `Sequential` reads the input shape without the batch
        # size; a stateful layer keeps that size for its states.
        self._batch_size_arg = (
            None if batch_input_shape is None else batch_input_shape[0]
        )
        self.use_cudnn = _args.use_cudnn(use_cudnn)
        if self.use_cudnn is True and self._cudnn_spec() is None:
            raise ValueError(
                "use_cudnn=True, but no cuDNN kernel computes this "
                f"configuration of {type(self).__name__} (the kernel has "
                "no LSTM variant); pass use_cudnn='auto' or False"
            )
        self.input_spec = keras.layers.InputSpec(ndim=3)
        if keras.backend.backend() == "tensorflow" and self._cudnn_possible():
            self.supports_jit = False  # its cuDNN ops cannot be XLA-compiled

    def build(self, sequences_shape, initial_state_shape=None):
        sequences_shape = tuple(sequences_shape)
        if self.stateful and sequences_shape[:1] == (None,):
            sequences_shape = (self._batch_size_arg,) + sequences_shape[1:]
        if len(sequences_shape) != 3:
            raise ValueError(
                f"{type(self).__name__} expects inputs of rank 3 "
                f"(batch, timesteps, features), got shape {sequences_shape}"
            )
        if sequences_shape[1] == 0:
            raise ValueError(
                f"{type(self).__name__} got a sequence with 0 timesteps "
                f"(input shape {sequences_shape}); at least one is needed"
            )
        if initial_state_shape is not None:  # symbolic states: check now
            shapes = initial_state_shape
            if not shapes or not isinstance(shapes[0], (list, tuple)):
                shapes = [shapes]
            self._check_state_shapes(
                [tuple(s) for s in shapes], sequences_shape[0]
            )
        super().build(sequences_shape, initial_state_shape)
        self.input_spec = keras.layers.InputSpec(
            ndim=3, axes={-1: sequences_shape[-1]}
        )

    def _check_initial_state(self, initial_state, sequences):
        if initial_state is None:
            return None
        states = (
            list(initial_state)
            if isinstance(initial_state, (list, tuple))
            else [initial_state]
        )
        shapes = [tuple(s.shape if hasattr(s, "shape") else ops.shape(s))
                  for s in states]
        self._check_state_shapes(shapes, sequences.shape[0])
        # A state of batch 1 serves every sequence, as in Keras's loop (on
        # TensorFlow and PyTorch). Tiled, not a broadcast view: PyTorch's
        # cuDNN kernel takes contiguous states only.
        return [
            ops.tile(s, (ops.shape(sequences)[0], 1))
            if shape[0] == 1 and sequences.shape[0] != 1 else s
            for s, shape in zip(states, shapes)
        ]

    def _check_state_shapes(self, shapes, batch):
        sizes = self.state_size
        if len(shapes) != len(sizes):
            raise ValueError(
                f"initial_state of {type(self).__name__} must be a list of "
                f"{len(sizes)} tensors of shapes "
                f"{[('batch', s) for s in sizes]}, got {len(shapes)} tensors"
            )
        for i, (shape, size) in enumerate(zip(shapes, sizes)):
            ok = len(shape) == 2 and shape[1] in (None, size)
            ok = ok and (batch is None or shape[0] in (None, 1, batch))
            if not ok:
                raise ValueError(
                    f"initial_state[{i}] of {type(self).__name__} must have "
                    f"shape (batch, {size}) = ({batch}, {size}) (or (1, "
                    f"{size}), for every sequence), got {shape}"
                )

    def _checked_mask(self, mask, sequences):
        """The mask as `(batch, timesteps)`; `(batch, timesteps, 1)` is
        read as that, as Keras's loop reads it."""
        if isinstance(mask, (list, tuple)):
            mask = mask[0] if mask else None
        if mask is None:
            return None
        shape = tuple(
            mask.shape if hasattr(mask, "shape") else ops.shape(mask)
        )
        want = tuple(sequences.shape[:2])
        leading_ok = all(
            a is None or b is None or a == b for a, b in zip(shape, want)
        )
        ok = len(shape) == 2 or (len(shape) == 3 and shape[2] in (None, 1))
        if not (ok and leading_ok):
            hint = ""
            if len(shape) == 3 and leading_ok:
                hint = (" (a mask of each inner sequence: Keras 3's "
                        "TimeDistributed passes on the mask of the sequence "
                        "layer it wraps unchanged; reduce it, e.g. with "
                        "keras.ops.any(mask, axis=-1), or drop it)")
            raise ValueError(
                f"mask of {type(self).__name__} must have shape (batch, "
                f"timesteps) = {want}, like the inputs' first two "
                f"dimensions, got {shape}{hint}"
            )
        return mask[..., 0] if len(shape) == 3 else mask

    def call(self, sequences, initial_state=None, mask=None, training=False):
        if self.stateful and keras.backend.backend() == "torch":
            import torch

            # Under `torch.compile` (`jit_compile=True`), the states'
            # in-place update after the call reached tensors saved for the
            # backward pass: the gradients came out wrong, silently. A
            # stateful layer runs eagerly there (as without `jit_compile`).
            return torch.compiler.disable(self._call)(
                sequences, initial_state, mask, training
            )
        return self._call(sequences, initial_state, mask, training)

    def _call(self, sequences, initial_state, mask, training):
        no_steps = (f"{type(self).__name__} got a sequence with 0 "
                    "timesteps; at least one is needed")
        if sequences.shape[1] == 0:
            raise ValueError(no_steps)
        if (keras.backend.backend() == "tensorflow"
                and deploy.target_format() is None):
            sequences = self._checked_when_run(
                sequences, initial_state, no_steps
            )
        initial_state = self._check_initial_state(initial_state, sequences)
        mask = self._checked_mask(mask, sequences)
        return super().call(
            sequences,
            initial_state=initial_state,
            mask=mask,
            training=training,
        )

    def _checked_when_run(self, sequences, initial_state, no_steps):
        """`sequences`, checked when a TensorFlow graph runs where its
        shape is not known when tracing: at least one timestep, and a
        stateful layer's batch size (Keras's check, which needs a known
        batch, fails deep in the loop otherwise)."""
        import tensorflow as tf

        checks = []
        if sequences.shape[1] is None:
            checks.append(tf.debugging.assert_positive(
                tf.shape(sequences)[1], message=no_steps
            ))
        state_batch = (self.states[0].shape[0]
                       if self.stateful and self.states else None)
        if (initial_state is None and sequences.shape[0] is None
                and state_batch is not None):
            checks.append(tf.debugging.assert_equal(
                tf.shape(sequences)[0], state_batch,
                message=f"{type(self).__name__} is stateful: the batch size "
                f"of the input sequences must be that of its states, "
                f"{state_batch}",
            ))
        if not checks:
            return sequences
        with tf.control_dependencies(checks):
            return tf.identity(sequences)

    def _cudnn_spec(self):
        """`(backend function, extra arguments)` of the backend's fused
        (cuDNN) kernel that computes this layer's function, or `None`."""
        return None

    def _cudnn_possible(self):
        spec = self._cudnn_spec()
        cell = self.cell
        backend = keras.backend.backend()
        if (
            spec is None
            or self.use_cudnn not in ("auto", True)
            or backend not in ("tensorflow", "torch", "jax")
            or cell.recurrent_dropout
        ):
            return False
        # Only TensorFlow's check takes the GRU's `reset_after`; the other
        # backends' GRU kernels refuse `reset_after=False` when called.
        extra = spec[1] if backend == "tensorflow" else {}
        return _backend.cudnn_ok(
            cell.activation,
            cell.recurrent_activation,
            self.unroll,
            cell.use_bias,
            **extra,
        )

    def _fused_backend_loop(self, sequences, initial_state, mask, training):
        """The backend's fused kernel (cuDNN on a GPU, as Keras's layers
        use it, with any of the TensorFlow, PyTorch and JAX backends), where
        it applies; `None` elsewhere (always on a CPU)."""
        if not self._cudnn_possible():
            return None
        cell = self.cell
        if training and cell.dropout:
            if cell.per_gate:  # the fused kernel has one input per step
                return None
            mask0 = cell.get_dropout_mask(sequences[:, 0, :])
            sequences = sequences * ops.expand_dims(mask0, 1)
        function, extra = self._cudnn_spec()
        go_backwards = self.go_backwards
        if go_backwards and mask is None:
            # Reversed here: the kernel's outputs then come in the order of
            # processing, as `go_backwards` returns them. (Keras 3.15's JAX
            # cuDNN LSTM, given `go_backwards`, returns them in the inputs'
            # order, unlike its other kernels and its loop.)
            sequences, go_backwards = ops.flip(sequences, axis=1), False
        try:
            return function(
                sequences,
                *initial_state,
                mask,
                kernel=cell.kernel,
                recurrent_kernel=cell.recurrent_kernel,
                bias=cell.bias,
                activation=cell.activation,
                recurrent_activation=cell.recurrent_activation,
                return_sequences=self.return_sequences,
                go_backwards=go_backwards,
                unroll=self.unroll,
                **extra,
            )
        except NotImplementedError:
            return None

    def inner_loop(self, sequences, initial_state, mask, training=False):
        # `mask` comes from `call`, which checked it (`_checked_mask`).
        cell = self.cell
        if self.stateful and keras.backend.backend() == "torch":
            # The layer assigns its new states in place after the call;
            # PyTorch's autograd needs the old ones intact (Keras copies
            # them too).
            initial_state = [ops.copy(s) for s in initial_state]
        # An export traces the portable loop, never the cuDNN kernel.
        target = deploy.target_format()
        if target is not None:
            deploy.check_exportable(self, target, sequences)
        use_cudnn = None if target else self.use_cudnn
        if use_cudnn in ("auto", True):
            out = self._fused_backend_loop(
                sequences, initial_state, mask, training
            )
            if out is not None:
                return out
        if use_cudnn is True:
            raise ValueError(
                "use_cudnn=True was given, but the cuDNN kernel is not "
                "available for this configuration or device; pass "
                "use_cudnn='auto' to fall back to the default implementation"
            )
        # The loops read the sequence time-major.
        time_major = ops.transpose(sequences, (1, 0, 2))
        if mask is None and keras.backend.backend() == "torch":
            return self._eager_loop(time_major, initial_state, training)
        if mask is not None:
            mask = ops.transpose(mask, (1, 0))
        # Not under a mixed-precision policy: the weights' casts stay in the
        # step, as in Keras's loop, so that their gradients are summed over
        # the steps in float32, not in float16.
        read_once = (target is None
                     and keras.backend.backend() == "tensorflow"
                     and cell.compute_dtype == cell.variable_dtype)
        with (_weights_read_once(cell, ops.shape(time_major)[1])
              if read_once else contextlib.nullcontext()):
            return self._loop(time_major, initial_state, mask, training,
                              target)

    def _loop(self, time_major, initial_state, mask, training, target):
        """The time loop over `call`: time-major inputs and mask,
        batch-major outputs."""
        cell = self.cell
        # ONNX Runtime's LSTM and GRU kernels have no float64 version.
        if (target == "onnx" and mask is None and not self.unroll
                and keras.backend.backend() == "tensorflow"
                and keras.backend.standardize_dtype(cell.compute_dtype)
                != "float64"):
            native_step = cell.onnx_step()
            if native_step is not None:  # one ONNX LSTM / GRU op
                last, outputs, states = deploy.onnx_native_loop(
                    native_step,
                    time_major,
                    list(initial_state),
                    go_backwards=self.go_backwards,
                )
                return last, ops.transpose(outputs, (1, 0, 2)), states
        # The whole step inside the loop, as Keras does: measured on a CPU,
        # a loop over the (timesteps, batch, gates * units) input products
        # is slower than the small per-step product, forward and (because
        # every step's product gradient is kept) backward; with layer norm
        # too, whose normalised input products, computed before the loop,
        # also made training steps differ in the last bits from one
        # process to the next (TensorFlow's graph rewrites).
        def step(x, states):
            return cell.call(x, states, training=training)

        if deploy.uses_rnn_loop(self, training):
            # Inference: a loop that ONNX and LiteRT converters turn into
            # builtin ops, as fast as the backend's (see `deploy.rnn_loop`).
            last, outputs, states = deploy.rnn_loop(
                step,
                time_major,
                list(initial_state),
                mask=mask,
                go_backwards=self.go_backwards,
                zero_output_for_mask=self.zero_output_for_mask,
                return_all_outputs=self.return_sequences,
            )
            return last, ops.transpose(outputs, (1, 0, 2)), states
        last, outputs, states = _backend.rnn(
            step,
            time_major,
            list(initial_state),
            go_backwards=self.go_backwards,
            mask=mask,
            unroll=self.unroll,
            input_length=time_major.shape[0],
            time_major=True,
            zero_output_for_mask=self.zero_output_for_mask,
            return_all_outputs=self.return_sequences,
        )
        return last, ops.transpose(outputs, (1, 0, 2)), states

    def _eager_loop(self, time_major, initial_state, training):
        """The PyTorch backend's loop (no mask): the input products of all
        steps in one product, then a Python loop of `recurrent_step` (in
        float32 with `TorchStepOps`). Eager PyTorch pays per call, so this
        is about twice as fast there as Keras's generic loop over `call`,
        and as fast as Keras's own PyTorch loop; the same function."""
        cell = self.cell
        z = cell.project_inputs(time_major, training=training)
        float32 = keras.backend.standardize_dtype(z.dtype) == "float32"
        step_ops = TorchStepOps if float32 else StepOps
        steps = range(z.shape[0])
        states, outputs = list(initial_state), []
        for t in reversed(steps) if self.go_backwards else steps:
            output, states = cell.recurrent_step(
                z[t], states, training=training, step_ops=step_ops
            )
            if self.return_sequences:
                outputs.append(output)
        sequence = (ops.stack(outputs, axis=1) if self.return_sequences
                    else ops.expand_dims(output, 1))
        return output, sequence, list(states)

    def get_config(self):
        config = super().get_config()
        del config["cell"]
        config.update(self.cell.argument_config())
        config["use_cudnn"] = self.use_cudnn
        config["activity_regularizer"] = keras.saving.serialize_keras_object(
            self.activity_regularizer
        )
        if self._batch_size_arg is not None:  # Keras 2's stateful batch
            config["batch_input_shape"] = (
                self._batch_size_arg, *self._input_shape_arg
            )
        return config

    @classmethod
    def from_config(cls, config):
        """Also reads Keras 2 layer configs (see `_read_keras2_config`)."""
        config = dict(config)
        shape = config.get("input_shape")
        if ("batch_input_shape" not in config
                and isinstance(shape, (list, tuple)) and len(shape) == 3):
            # Keras's loader of legacy `.h5` files passes a saved
            # `batch_input_shape` on as `input_shape`.
            config["batch_input_shape"] = config.pop("input_shape")
        # Not `keras.layers.RNN.from_config`: our configs hold no `cell`.
        with _args.reading_config():
            return cls(**_read_keras2_config(config, cls.keras2_missing))


def _read_keras2_config(config, missing=None):
    """A copy of `config`. A Keras 2 config (`time_major`, which `tf_keras`
    layers write; or `implementation` without `seed`, as every Keras 2
    layer and cell wrote it, where Keras 3 writes `seed` and we write
    both) means Keras 2's `"hard_sigmoid"`: it becomes
    `"keras2_hard_sigmoid"`, with a warning, to keep the numbers; and the
    arguments in `missing` that it lacks take the values given there (a
    Keras 2.0 GRU's config has no `reset_after`: it was False). A Keras 2
    dtype policy becomes its name (`keras2_policy_name`)."""
    keras2 = "time_major" in config or (
        "implementation" in config and "seed" not in config
    )
    config = keras2_hard_sigmoid_config(config) if keras2 else dict(config)
    if keras2:
        config = {**(missing or {}), **config}
    if "dtype" in config:
        config["dtype"] = keras2_policy_name(config["dtype"])
    return config


def keras2_policy_name(dtype):
    """The name of a Keras 2 dtype policy as Keras 2 serialized it in
    layer configs (`{"class_name": "Policy", "config": {"name":
    "mixed_float16"}}`, which Keras 3 cannot read), which Keras 3 reads
    as the same policy; any other `dtype` as it is."""
    if (isinstance(dtype, dict) and dtype.get("class_name") == "Policy"
            and isinstance(dtype.get("config"), dict)
            and "name" in dtype["config"]):
        return dtype["config"]["name"]
    return dtype


def keras2_hard_sigmoid_config(config, value="keras2_hard_sigmoid"):
    """A copy of the Keras 2 layer or cell `config` whose `"hard_sigmoid"`
    activations are `value` (Keras 2's formula), with a warning."""
    config = dict(config)
    for key in ("activation", "recurrent_activation"):
        if config.get(key) == "hard_sigmoid":
            warnings.warn(
                f"Keras 2 config of {config.get('name')!r}: {key}="
                "'hard_sigmoid' read as 'keras2_hard_sigmoid' (Keras 2's "
                "formula)",
                stacklevel=4,
            )
            config[key] = value
    return config


def _cell_property(name):
    return property(
        lambda self: getattr(self.cell, name),
        doc=f"The cell's `{name}` (read-only).",
    )


def expose_cell_arguments(layer_cls, cell_cls):
    """Give `layer_cls` each argument of `cell_cls` as a read-only
    attribute, as Keras's layers expose their cell's settings."""
    for name, parameter in inspect.signature(cell_cls).parameters.items():
        if parameter.kind != parameter.VAR_KEYWORD:
            setattr(layer_cls, name, _cell_property(name))
    return layer_cls
