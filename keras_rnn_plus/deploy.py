"""Deploying models with `krp` layers: ONNX (ONNX Runtime) and LiteRT
(TFLite).

`model.export(path, format="onnx")` and `model.export(path,
format="litert")` work for models with `krp.LSTM` and `krp.GRU` as they
are: at inference the layers run `rnn_loop` below, a time loop that
converters turn into plain ONNX / LiteRT builtin ops (no TensorFlow
"Select" ops, no unrolling). For ONNX, a cell that ONNX has as one op
(the plain LSTM, the cuDNN-form GRU; see the cells' `onnx_step`) is traced
as `onnx_native_loop` instead, which tf2onnx turns into that op.

`export(model, path, format=...)` does the same with checks: LiteRT with
builtin ops only, and a clear error instead of an artifact that would
compute something else (a stateful layer in ONNX, an open sequence length
under PyTorch).

TensorFlow is imported only where a TensorFlow graph is built, so that the
package imports without it on the PyTorch and JAX backends.
"""

import contextlib
import sys
import threading

import keras

_STATE = threading.local()


def exporting_format():
    """The format that `export` is writing in this thread, else `None`."""
    return getattr(_STATE, "format", None)


@contextlib.contextmanager
def _exporting(fmt):
    previous = exporting_format()
    _STATE.format = fmt
    try:
        yield
    finally:
        _STATE.format = previous


_KERAS_EXPORTERS = None


def _keras_exporter_codes():
    """The code objects of Keras's ONNX and LiteRT exporters (tracing
    happens inside them), mapped to their format."""
    global _KERAS_EXPORTERS
    if _KERAS_EXPORTERS is None:
        codes = {}
        try:
            from keras.src.export import litert, onnx

            codes[onnx.export_onnx.__code__] = "onnx"
            codes[litert.export_litert.__code__] = "litert"
            codes[litert.LiteRTExporter.export.__code__] = "litert"
        except (ImportError, AttributeError):  # pragma: no cover
            pass
        _KERAS_EXPORTERS = codes
    return _KERAS_EXPORTERS


def _may_be_traced_by_exporter():
    """Whether a Keras exporter could be tracing this call, so that the
    walk up the stack is worth its cost (which an eager PyTorch model would
    pay on every call). TensorFlow's exporters trace graphs, never eager
    calls. PyTorch's trace with TorchScript; under `torch.compile` /
    `torch.export` the walk cannot be traced, and Keras's kernels leave
    cuDNN by themselves there."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return not tf.executing_eagerly()
    if backend == "torch":
        import torch

        return torch.jit.is_tracing() and not torch.compiler.is_compiling()
    return True


def target_format():
    """The format being exported: `export`'s, else that of a Keras
    exporter (`model.export(..., format=...)`) on the call stack."""
    fmt = exporting_format()
    if fmt is not None or not _may_be_traced_by_exporter():
        return fmt
    codes = _keras_exporter_codes()
    frame = sys._getframe(1)
    while frame is not None:
        fmt = codes.get(frame.f_code)
        if fmt is not None:
            return fmt
        frame = frame.f_back
    return None


def rnn_loop(
    step,
    inputs,
    initial_states,
    mask=None,
    go_backwards=False,
    zero_output_for_mask=False,
    return_all_outputs=True,
):
    """The inference time loop of the package's layers (TensorFlow).

    The same contract and numbers as `keras.src.backend.rnn` with
    `time_major=True` (`inputs` `(timesteps, batch, ...)`, `mask`
    `(timesteps, batch)`; returns `(last_output, outputs, states)`,
    `outputs` time-major), for step functions whose output has the shape
    of their first state (true of every cell of the package).

    It is built for converters: a `tf.while_loop` that reads step `t` with
    `tf.gather` (no input tensor list), carries the last output (nothing
    else when only that is needed) and writes the output sequence, with
    `return_all_outputs`, into a tensor list. tf2onnx turns the loop into an
    ONNX `Loop` whose scan output is that list, which must then be an empty
    reserved list (`TensorListReserve`). LiteRT's converter lowers tensor
    lists to builtin ops (`WHILE`, `GATHER`, `SLICE`, `CONCATENATION`) only
    when the reserved list has a static element shape, batch included; a
    list made from a zero tensor has no such need, so that one is traced
    for LiteRT (`export(..., format="litert")`, or Keras's LiteRT exporter
    on the call stack). In TensorFlow all of it runs as fast as Keras's
    loop.
    """
    import tensorflow as tf

    states = tuple(initial_states)
    if go_backwards:
        inputs = tf.reverse(inputs, [0])
        if mask is not None:
            mask = tf.reverse(mask, [0])
    if mask is not None and mask.dtype != tf.bool:
        mask = tf.cast(mask, tf.bool)
    steps = tf.shape(inputs)[0]
    zero_output = tf.zeros_like(states[0])
    outputs_list = None
    if return_all_outputs:
        outputs_list = tf.TensorArray(
            zero_output.dtype, size=steps, element_shape=zero_output.shape
        )
        if target_format() == "litert":
            # LiteRT lowers a list made from a tensor to builtin ops; an
            # empty reserved list needs a static element shape (batch
            # included). tf2onnx needs the reserved list.
            shape = tf.concat([[steps], tf.shape(zero_output)], axis=0)
            outputs_list = outputs_list.unstack(
                tf.zeros(shape, zero_output.dtype)
            )

    def body(t, last, outputs_list, *states):
        output, new_states = step(tf.gather(inputs, t), states)
        new_states = tuple(new_states)
        if mask is not None:
            mask_t = tf.expand_dims(tf.gather(mask, t), -1)
            output = tf.where(
                mask_t, output, zero_output if zero_output_for_mask else last
            )
            new_states = tuple(
                tf.where(mask_t, new, old)
                for new, old in zip(new_states, states)
            )
        if outputs_list is not None:
            outputs_list = outputs_list.write(t, output)
        return (t + 1, output, outputs_list) + new_states

    if outputs_list is None:
        # A loop variable cannot be None: carry a scalar placeholder.
        def body_without_list(t, last, placeholder, *states):
            result = body(t, last, None, *states)
            return result[:2] + (placeholder,) + result[3:]

        loop_body, carried = body_without_list, tf.constant(0)
    else:
        loop_body, carried = body, outputs_list
    result = tf.while_loop(
        lambda t, *_: t < steps,
        loop_body,
        (tf.constant(0), zero_output, carried) + states,
    )
    last, new_states = result[1], list(result[3:])
    if return_all_outputs:
        outputs = result[2].stack()
        outputs.set_shape([inputs.shape[0]] + zero_output.shape.as_list())
    else:
        outputs = tf.expand_dims(last, 0)
    return last, outputs, new_states


def onnx_activation(fn, recurrent=False):
    """The TensorFlow form of activation `fn` that tf2onnx's LSTM / GRU
    patterns recognise (`sigmoid`, `tanh`, `relu`; as a recurrent
    activation of an LSTM also Keras 2's hard sigmoid, ONNX's
    `HardSigmoid` with its default alpha 0.2 and beta 0.5), else `None`."""
    import tensorflow as tf

    from keras_rnn_plus.activations import keras2_hard_sigmoid

    if recurrent and fn is keras2_hard_sigmoid:
        return lambda x: tf.maximum(tf.minimum(x * 0.2 + 0.5, 1.0), 0.0)
    known = {"sigmoid": tf.sigmoid, "tanh": tf.tanh, "relu": tf.nn.relu}
    for name, op in known.items():
        if fn is keras.activations.get(name):
            return op
    return None


def onnx_native_loop(step, inputs, initial_states, go_backwards=False):
    """The ONNX export loop of a cell whose step ONNX has as one op.

    `step` builds its ops the way tf2onnx recognises a Keras LSTM or GRU
    cell (see the cells' `onnx_step`); this loop is the one it recognises
    around such a step: the inputs read from a tensor list
    (`TensorListFromTensor`), the states and the output list as the only
    carried values, no mask. tf2onnx then replaces loop and step by one
    ONNX `LSTM` or `GRU` op. Same contract as `rnn_loop` without a mask;
    the last output is the first final state (`h`).
    """
    import tensorflow as tf

    if go_backwards:
        inputs = tf.reverse(inputs, [0])
    steps = tf.shape(inputs)[0]
    inputs_list = tf.TensorArray(inputs.dtype, size=steps).unstack(inputs)
    first = initial_states[0]
    outputs_list = tf.TensorArray(
        first.dtype, size=steps, element_shape=first.shape
    )

    def body(t, outputs_list, *states):
        output, new_states = step(inputs_list.read(t), states)
        return (t + 1, outputs_list.write(t, output)) + tuple(new_states)

    result = tf.while_loop(
        lambda t, *_: t < steps,
        body,
        (tf.constant(0), outputs_list) + tuple(initial_states),
    )
    outputs = result[1].stack()
    outputs.set_shape([inputs.shape[0]] + first.shape.as_list())
    states = list(result[2:])
    return states[0], outputs, states


def uses_rnn_loop(layer, training):
    """Whether `layer.inner_loop` runs `rnn_loop` (inference, TensorFlow
    backend, not unrolled)."""
    return (
        not training
        and not layer.unroll
        and keras.backend.backend() == "tensorflow"
    )


def check_exportable(layer, fmt, sequences=None):
    """Raise `ValueError` where `layer` would export to `fmt` as an
    artifact that computes something else (given the traced `sequences`,
    also where their batch size is open for a stateful layer's LiteRT
    file: other sizes would be broadcast against the states)."""
    if (fmt == "litert" and layer.stateful and sequences is not None
            and sequences.shape[0] is None):
        raise ValueError(
            f"{type(layer).__name__} {layer.name!r} is stateful, and the "
            "LiteRT export traces an open batch size: the file would take "
            "any batch and broadcast it against the states' batch of "
            f"{layer.states[0].shape[0]}, silently. Export with "
            "krp.deploy.export(model, path, format='litert'), which fixes "
            "the batch size to the states', or give an input_signature "
            "with that batch size."
        )
    if fmt == "onnx" and layer.stateful:
        raise ValueError(
            f"{type(layer).__name__} {layer.name!r} is stateful: an ONNX "
            "export would freeze its states to their current values and "
            "never carry them from one call to the next. Export a "
            "non-stateful copy of the model (same weights) with "
            "return_state=True and pass the states back as initial_state "
            "inputs, or export to LiteRT, which keeps the states in "
            "variables."
        )


FORMATS = ("onnx", "litert")


def export(model, filepath, format="onnx", verbose=False, **kwargs):
    """Export `model` for ONNX Runtime (`format="onnx"`) or LiteRT
    (`format="litert"`, a `.tflite` path), checked.

    What `model.export(filepath, format=format, **kwargs)` does, plus:

    - the package's layers trace their export loop for that format, and
      never the cuDNN kernel (even on a GPU);
    - LiteRT on TensorFlow: builtin ops only (`TFLITE_BUILTINS`; Keras
      also allows TensorFlow "Select" ops, which the plain LiteRT
      interpreter cannot run), so a model that needs them fails here with
      the converter's message instead of at load time on the device;
    - a clear `ValueError` for what would export as a different function:
      a stateful layer in ONNX (ours or Keras's recurrent layers), whose
      states would be frozen; under
      PyTorch, an open sequence length (any open input dimension but the
      batch, in a model with recurrent layers), which Keras's exporters
      trace as one step;
    - LiteRT on TensorFlow, stateful layers: the file's batch size is
      that of the states (Keras's exporter leaves it open).

    Needs the exporters: `pip install -e ".[export]"` in the repository.

    Args:
        model: A Keras model that has been called once (Keras's ONNX
            exporter refuses a model never called, even one built on
            `keras.Input`; for LiteRT a known input shape is enough).
        filepath: Where to write: a `.onnx` file, or a `.tflite` file.
        format: `"onnx"` or `"litert"`.
        verbose: Print Keras's export messages.
        **kwargs: Passed to `model.export` (e.g. `input_signature`,
            `opset_version`; for LiteRT, converter attributes such as
            `optimizations`, and `target_spec`, a dict or a
            `tf.lite.TargetSpec`: builtin ops only unless it says
            otherwise).

    Returns:
        `filepath`.
    """
    if not isinstance(model, keras.Model):
        raise TypeError(
            "model must be a Keras model (keras.Model, Sequential or "
            f"Functional), got {type(model).__name__}: wrap a layer in a "
            "model to export it"
        )
    if format not in FORMATS:
        raise ValueError(
            f"format must be one of {FORMATS}, got {format!r} (use "
            "model.export for the other formats)"
        )
    layers = [  # ours, and Keras's loops (`keras.layers.RNN(krp.LSTMCell)`)
        layer for layer in model._flatten_layers(include_self=True)
        if isinstance(layer, keras.layers.RNN)
    ]
    for layer in layers:
        check_exportable(layer, format)
    backend = keras.backend.backend()
    if backend == "torch" and layers:
        _check_fixed_lengths(model, kwargs.get("input_signature"))
    stateful = [layer for layer in layers if layer.stateful and layer.states]
    if (format == "litert" and stateful
            and kwargs.get("input_signature") is None):
        # Keras's exporter leaves the batch open; the states fix it.
        kwargs["input_signature"] = _with_batch_size(
            model, stateful[0].states[0].shape[0]
        )
    if format == "litert" and backend == "tensorflow":
        # (PyTorch's LiteRT converter takes no `target_spec`.)
        import tensorflow as tf

        spec = kwargs.pop("target_spec", None)
        if not isinstance(spec, tf.lite.TargetSpec):  # else as given
            spec = dict(spec or {})
            spec.setdefault("supported_ops", [tf.lite.OpsSet.TFLITE_BUILTINS])
        kwargs["target_spec"] = spec
    with _exporting(format):
        model.export(str(filepath), format=format, verbose=verbose, **kwargs)
    return filepath


def _check_fixed_lengths(model, input_signature):
    """Under PyTorch, Keras's exporters (ONNX and LiteRT) trace every open
    dimension of the inputs as 1, which unrolls the time loops to one
    step: refuse an open dimension (other than the batch) in a model with
    recurrent layers."""
    from keras.src import tree
    from keras.src.export.export_utils import get_input_signature

    if input_signature is None:
        try:
            input_signature = get_input_signature(model)
        except ValueError:  # never called: Keras's exporter says so
            return
    for spec in tree.flatten(input_signature):
        shape = tuple(spec.shape)
        if None in shape[1:]:
            raise ValueError(
                f"an input of the model has an open dimension {shape}: "
                "under PyTorch, Keras's exporters trace it as 1, so "
                "the recurrent layers' loops would run one step only (an "
                "open sequence length). Give the model fixed shapes "
                "(keras.Input((timesteps, features))) or an input_signature "
                "with them."
            )


def _with_batch_size(model, batch):
    """Keras's input signature of `model` with the batch axis set."""
    from keras.src import tree
    from keras.src.export.export_utils import get_input_signature

    return tree.map_structure(
        lambda spec: keras.InputSpec(
            shape=(batch, *spec.shape[1:]), dtype=spec.dtype, name=spec.name
        ),
        get_input_signature(model),
    )

