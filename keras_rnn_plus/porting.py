"""Porting models trained elsewhere.

The weight converters return a list in the `get_weights()` order of our
layer (`krp.LSTM`: `kernel`, `recurrent_kernel`, `bias`, peephole weights
i, f, o, `projection_kernel`; `krp.GRU`: `kernel`, `recurrent_kernel`,
`bias`), ready for `layer.set_weights(...)`; `load_keras2_model` loads a
whole Keras 2 model file, `CuDNNLSTM` / `CuDNNGRU` included.
"""

import json
import os
import shutil
import tempfile
import zipfile

import numpy as np

from keras_rnn_plus._base import (
    keras2_hard_sigmoid_config,
    keras2_policy_name,
)

# Keras 2's recurrent classes that ours replace, by the same name.
KERAS2_CLASSES = ("LSTM", "GRU", "LSTMCell", "GRUCell", "PeepholeLSTMCell")


def _reorder(matrix, order, units):
    """Permute the gate blocks of the last axis into Keras's order."""
    blocks = [matrix[..., k * units:(k + 1) * units]
              for k in range(len(order))]
    return np.concatenate([blocks[k] for k in order], axis=-1)


def _array(name, value, shape):
    """`value` as an array of `shape` (`None`: any size on that axis)."""
    if hasattr(value, "detach"):  # a PyTorch tensor or parameter
        value = value.detach().cpu()
        if str(value.dtype) == "torch.bfloat16":  # numpy has no bfloat16
            value = value.float()
        value = value.numpy()
    array = np.array(value)  # a copy: the result shares no memory
    if array.ndim != len(shape) or any(
        want is not None and got != want
        for got, want in zip(array.shape, shape)
    ):
        expected = tuple("any" if n is None else n for n in shape)
        raise ValueError(
            f"{name} must have shape {expected}; got {array.shape}"
        )
    return array


def from_tf1_lstm_cell(
    kernel,
    bias,
    *,
    w_i_diag=None,
    w_f_diag=None,
    w_o_diag=None,
    projection_kernel=None,
):
    """Convert TF1 `tf.compat.v1.nn.rnn_cell.LSTMCell` weights.

    TF1 keeps one `kernel` of shape `(input_dim + h_dim, 4 * units)` over
    the concatenation `[x, h]`, gate order i, j (candidate), f, o; peepholes
    `w_i_diag`, `w_f_diag`, `w_o_diag`; and `projection/kernel`
    `(units, num_proj)`. Use the result in
    `krp.LSTM(units, use_peepholes=..., num_proj=..., cell_clip=...,
    proj_clip=..., forget_bias=1.0)`: TF1's `forget_bias` defaults to 1.0
    and is added at run time, so pass the cell's value. TF1's state tuple is
    `(c, h)`, ours `[h, c]`.

    Args:
        kernel: array `(input_dim + h_dim, 4 * units)`.
        bias: array `(4 * units,)`.
        w_i_diag, w_f_diag, w_o_diag: peephole arrays `(units,)` or `None`.
        projection_kernel: array `(units, num_proj)` or `None`.

    Returns:
        The list of weights in `krp.LSTM.get_weights()` order.

    Example:

    >>> import numpy as np
    >>> from keras_rnn_plus.porting import from_tf1_lstm_cell
    >>> w = from_tf1_lstm_cell(np.zeros((5, 8)), np.zeros(8))
    >>> [a.shape for a in w]
    [(3, 8), (2, 8), (8,)]
    """
    bias = _array("bias", bias, (None,))
    if not bias.shape[0] or bias.shape[0] % 4:
        raise ValueError(f"bias must be (4 * units,); got {bias.shape}")
    units = bias.shape[0] // 4
    h_dim = units
    if projection_kernel is not None:
        projection_kernel = _array(
            "projection_kernel", projection_kernel, (units, None)
        )
        h_dim = projection_kernel.shape[1]
    kernel = _array("kernel", kernel, (None, 4 * units))
    input_dim = kernel.shape[0] - h_dim
    if input_dim < 1:
        raise ValueError(
            f"kernel must be (input_dim + {h_dim}, {4 * units}) for "
            f"{units} units and h of {h_dim}; got {kernel.shape}"
        )
    order = (0, 2, 1, 3)  # TF1 i, j, f, o -> Keras i, f, c(j), o
    weights = [
        _reorder(kernel[:input_dim], order, units),
        _reorder(kernel[input_dim:], order, units),
        _reorder(bias, order, units),
    ]
    peepholes = [w_i_diag, w_f_diag, w_o_diag]
    if any(p is not None for p in peepholes):
        if any(p is None for p in peepholes):
            raise ValueError("give all three of w_i_diag, w_f_diag, w_o_diag")
        weights += [
            _array(name, p, (units,))
            for name, p in zip(("w_i_diag", "w_f_diag", "w_o_diag"), peepholes)
        ]
    if projection_kernel is not None:
        weights.append(projection_kernel)
    return weights


def _torch_biases(bias_ih, bias_hh, gates):
    """PyTorch's two biases, each `(gates,)`, or `None` without biases."""
    if (bias_ih is None) != (bias_hh is None):
        hint = ""
        if bias_hh is None and np.ndim(bias_ih) == 2:
            hint = (f"; got a {tuple(np.shape(bias_ih))} matrix as "
                    "bias_ih: for a PyTorch layer made with bias=False and "
                    "proj_size, pass weight_hr by keyword")
        raise ValueError("give both bias_ih and bias_hh, or neither" + hint)
    if bias_ih is None:
        return None
    return (_array("bias_ih", bias_ih, (gates,)),
            _array("bias_hh", bias_hh, (gates,)))


def from_torch_lstm(weight_ih, weight_hh, bias_ih=None, bias_hh=None,
                    weight_hr=None):
    """Convert one layer and direction of PyTorch's `nn.LSTM`.

    PyTorch keeps `weight_ih_l0` `(4 * units, input_dim)`, `weight_hh_l0`
    `(4 * units, h_dim)`, two biases, gate order i, f, g, o (the same as
    Keras's), and with `proj_size` a `weight_hr_l0` `(num_proj, units)`.
    Pass numpy arrays or PyTorch tensors (parameters too); use the result in
    `krp.LSTM(units, num_proj=proj_size or None)`, with `use_bias=False`
    for a PyTorch LSTM made with `bias=False`. PyTorch's two biases are
    summed into our one.

    Args:
        weight_ih: array `(4 * units, input_dim)`.
        weight_hh: array `(4 * units, h_dim)` (`h_dim` is `proj_size` or
            `units`).
        bias_ih, bias_hh: arrays `(4 * units,)`, both or neither.
        weight_hr: array `(proj_size, units)` or `None`.

    Returns:
        The list of weights in `krp.LSTM.get_weights()` order.

    Example:

    >>> import numpy as np
    >>> from keras_rnn_plus.porting import from_torch_lstm
    >>> w = from_torch_lstm(np.zeros((8, 3)), np.zeros((8, 2)),
    ...                     np.zeros(8), np.zeros(8))
    >>> [a.shape for a in w]
    [(3, 8), (2, 8), (8,)]
    """
    weight_ih = _array("weight_ih", weight_ih, (None, None))
    gates = weight_ih.shape[0]
    if not gates or gates % 4:
        raise ValueError(
            f"weight_ih must be (4 * units, input_dim); got {weight_ih.shape}"
        )
    biases = _torch_biases(bias_ih, bias_hh, gates)
    h_dim = gates // 4
    if weight_hr is not None:
        weight_hr = _array("weight_hr", weight_hr, (None, gates // 4))
        h_dim = weight_hr.shape[0]
    weight_hh = _array("weight_hh", weight_hh, (gates, h_dim))
    weights = [weight_ih.T, weight_hh.T]
    if biases is not None:
        weights.append(biases[0] + biases[1])
    if weight_hr is not None:
        weights.append(weight_hr.T)
    return weights


def from_tf1_gru_cell(gates_kernel, gates_bias, candidate_kernel,
                      candidate_bias):
    """Convert TF1 `tf.compat.v1.nn.rnn_cell.GRUCell` weights.

    TF1's GRU is Keras's with `reset_after=False` (the reset gate scales
    `h(t-1)` before the candidate's product): `gates/kernel`
    `(input_dim + units, 2 * units)` over `[x, h]`, gate order r, u (u is
    Keras's update gate z), `gates/bias` `(2 * units,)`,
    `candidate/kernel` `(input_dim + units, units)` over `[x, r * h]` and
    `candidate/bias` `(units,)`. Use the result in
    `krp.GRU(units, reset_after=False)` (and the cell's `activation`).

    Returns:
        `[kernel, recurrent_kernel, bias]` for `krp.GRU.set_weights`.

    Example:

    >>> import numpy as np
    >>> from keras_rnn_plus.porting import from_tf1_gru_cell
    >>> w = from_tf1_gru_cell(np.zeros((5, 4)), np.zeros(4),
    ...                       np.zeros((5, 2)), np.zeros(2))
    >>> [a.shape for a in w]
    [(3, 6), (2, 6), (6,)]
    """
    candidate_bias = _array("candidate_bias", candidate_bias, (None,))
    units = candidate_bias.shape[0]
    if not units:
        raise ValueError("candidate_bias must be (units,) with units >= 1")
    candidate_kernel = _array("candidate_kernel", candidate_kernel,
                              (None, units))
    rows = candidate_kernel.shape[0]
    if rows <= units:
        raise ValueError(
            f"candidate_kernel must be (input_dim + {units}, {units}); got "
            f"{candidate_kernel.shape}"
        )
    gates_kernel = _array("gates_kernel", gates_kernel, (rows, 2 * units))
    gates_bias = _array("gates_bias", gates_bias, (2 * units,))
    kernel = np.concatenate([gates_kernel, candidate_kernel], axis=-1)
    bias = np.concatenate([gates_bias, candidate_bias])
    order = (1, 0, 2)  # TF1 r, u, candidate -> Keras z(u), r, h
    input_dim = rows - units
    return [
        _reorder(kernel[:input_dim], order, units),
        _reorder(kernel[input_dim:], order, units),
        _reorder(bias, order, units),
    ]


def from_torch_gru(weight_ih, weight_hh, bias_ih=None, bias_hh=None):
    """Convert one layer and direction of PyTorch's `nn.GRU`.

    PyTorch's GRU is Keras's with `reset_after=True` (Keras's default: the
    reset gate scales the recurrent product, its bias included):
    `weight_ih_l0` `(3 * units, input_dim)`, `weight_hh_l0`
    `(3 * units, units)`, gate order r, z, n (Keras: z, r, h), and the two
    biases that become the rows of our `bias` `(2, 3 * units)`. Pass numpy
    arrays or PyTorch tensors; use the result in `krp.GRU(units)`,
    with `use_bias=False` for a PyTorch GRU made with `bias=False`.

    Returns:
        `[kernel, recurrent_kernel, bias]` (no bias without biases) for
        `krp.GRU.set_weights`.

    Example:

    >>> import numpy as np
    >>> from keras_rnn_plus.porting import from_torch_gru
    >>> w = from_torch_gru(np.zeros((6, 3)), np.zeros((6, 2)),
    ...                    np.zeros(6), np.zeros(6))
    >>> [a.shape for a in w]
    [(3, 6), (2, 6), (2, 6)]
    """
    weight_hh = _array("weight_hh", weight_hh, (None, None))
    units = weight_hh.shape[1]
    gates = 3 * units
    if not units or weight_hh.shape[0] != gates:
        raise ValueError(
            f"weight_hh must be (3 * units, units); got {weight_hh.shape}"
        )
    weight_ih = _array("weight_ih", weight_ih, (gates, None))
    order = (1, 0, 2)  # PyTorch r, z, n -> Keras z, r, h
    weights = [_reorder(weight_ih.T, order, units),
               _reorder(weight_hh.T, order, units)]
    biases = _torch_biases(bias_ih, bias_hh, gates)
    if biases is not None:
        weights.append(_reorder(np.stack(biases), order, units))
    return weights


def from_keras2_cudnn(kernel, recurrent_kernel, bias):
    """Convert the weights of Keras 2's `CuDNNLSTM` / `CuDNNGRU`.

    Those layers (`tf.compat.v1.keras.layers`, standalone Keras 2) have
    Keras's weight shapes and gate order (i, f, c, o; z, r, h) but pass
    each gate's slice of `kernel` to cuDNN as raw memory, so a gate's
    `(input_dim, units)` block holds its matrix in cuDNN's `(units,
    input_dim)` layout, and a recurrent block its transpose; `bias` holds
    the input biases of the gates, then the recurrent ones. The result
    goes into `krp.LSTM(units)` or `krp.GRU(units)` (`reset_after=True`),
    with the default activations, the only ones cuDNN computes.
    `porting.load_keras2_model` applies it to whole model files.

    Args:
        kernel: array `(input_dim, G * units)`, `G` = 4 (LSTM) or 3 (GRU).
        recurrent_kernel: array `(units, G * units)`.
        bias: array `(2 * G * units,)`.

    Returns:
        `[kernel, recurrent_kernel, bias]` for `set_weights`: the LSTM's
        two biases summed, `(4 * units,)`; the GRU's as rows, `(2, 3 *
        units)`.

    Example:

    >>> import numpy as np
    >>> from keras_rnn_plus.porting import from_keras2_cudnn
    >>> w = from_keras2_cudnn(np.zeros((3, 8)), np.zeros((2, 8)),
    ...                       np.zeros(16))
    >>> [a.shape for a in w]
    [(3, 8), (2, 8), (8,)]
    """
    recurrent_kernel = _array("recurrent_kernel", recurrent_kernel,
                              (None, None))
    units, width = recurrent_kernel.shape
    if not units or width not in (3 * units, 4 * units):
        raise ValueError(
            "recurrent_kernel must be (units, 4 * units) (LSTM) or (units, "
            f"3 * units) (GRU); got {recurrent_kernel.shape}"
        )
    gates = width // units
    kernel = _array("kernel", kernel, (None, width))
    bias = _array("bias", bias, (2 * width,))
    input_dim = kernel.shape[0]
    blocks = range(0, width, units)
    kernel = np.concatenate(
        [kernel[:, k:k + units].reshape(units, input_dim).T for k in blocks],
        axis=-1,
    )
    recurrent_kernel = np.concatenate(
        [recurrent_kernel[:, k:k + units].T for k in blocks], axis=-1
    )
    bias = bias.reshape(2, width)
    return [kernel, recurrent_kernel, bias.sum(0) if gates == 4 else bias]


# Keras 2's cuDNN-only layers, and ours that compute their function.
KERAS2_CUDNN_CLASSES = {"CuDNNLSTM": "LSTM", "CuDNNGRU": "GRU"}


# Keras 2's layers that read a list input as `[inputs, *initial_state]`
# (and so saved a call with `initial_state` as a node of several inputs).
_KERAS2_INITIAL_STATE_LAYERS = ("RNN", "SimpleRNN", "LSTM", "GRU",
                                "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D",
                                "Bidirectional")


def _keras2_initial_state_nodes(layer):
    """The inbound nodes of a Keras 2 functional model's recurrent `layer`
    config, with a call given `initial_state` (saved by Keras 2 as the
    node's inputs after the first) rewritten as Keras 3 saves it: one
    input and an `initial_state` keyword argument."""
    def tensor(data):
        # Keras replaces it by the output that `keras_history` names; the
        # shape and dtype are placeholders.
        return {"class_name": "__keras_tensor__",
                "config": {"shape": [], "dtype": "float32",
                           "keras_history": list(data[:3])}}

    nodes = []
    for node in layer["inbound_nodes"]:
        if isinstance(node, list) and len(node) > 1:
            kwargs = dict(node[0][3]) if len(node[0]) > 3 else {}
            if kwargs.pop("constants", None) is not None or (
                layer.get("config", {}).get("num_constants")
            ):
                raise ValueError(
                    f"layer {layer.get('name')!r}: Keras 2's RNN "
                    "`constants` have no counterpart in Keras 3"
                )
            kwargs["initial_state"] = [tensor(d) for d in node[1:]]
            node = {"args": [tensor(node[0])], "kwargs": kwargs}
        nodes.append(node)
    return nodes


# Keras 2's model classes: nested in a functional model, their calls are
# numbered from 1 (node 0 is the model's own graph), Keras 3's from 0.
_KERAS2_MODEL_CLASSES = ("Functional", "Model", "Sequential")


def _keras2_nested_model_references(config):
    """A Keras 2 functional model `config` whose references to the models
    nested in it (in the layers' inbound nodes and the model's outputs)
    count those models' calls as Keras 3 does."""
    nested = {layer.get("name") for layer in config["layers"]
              if layer.get("class_name") in _KERAS2_MODEL_CLASSES}

    def shift(value):
        if (isinstance(value, list) and len(value) >= 3
                and isinstance(value[0], str) and value[0] in nested
                and isinstance(value[1], int)):
            # [layer name, node index, tensor index(, call kwargs)]
            return [value[0], max(value[1] - 1, 0),
                    *[shift(v) for v in value[2:]]]
        if isinstance(value, list):
            return [shift(v) for v in value]
        if isinstance(value, dict):
            return {k: shift(v) for k, v in value.items()}
        return value

    if not nested:
        return config
    layers = [{**layer, "inbound_nodes": shift(layer["inbound_nodes"])}
              if "inbound_nodes" in layer else layer
              for layer in config["layers"]]
    return {**config, "layers": layers,
            "output_layers": shift(config["output_layers"])}


# How Keras 3 saves `keras2_hard_sigmoid` (Keras's own layers read an
# activation given by name only among Keras's functions).
_KERAS2_HARD_SIGMOID = {
    "module": "builtins",
    "class_name": "function",
    "config": "keras_rnn_plus>keras2_hard_sigmoid",
    "registered_name": "function",
}


def _keras2_config_for_ours(node, keras_file=False):
    """A Keras 2 model config whose recurrent layers and cells resolve to
    ours by class name, wherever they sit (Keras 2 tags nested layers with
    `module="keras.layers"`, which Keras 3 reads as its own class), and
    whose `"hard_sigmoid"` activations keep Keras 2's formula, whose
    dtype policies are their names (Keras 3 cannot read Keras 2's policy
    configs), whose calls with `initial_state` and references to nested
    models read as Keras 3 saves them (`_keras2_initial_state_nodes`,
    `_keras2_nested_model_references`), and whose other layers lose the
    Keras 2 keys that Keras 3 refuses: `time_major` (`RNN`, `SimpleRNN`;
    always False there) and, in a `.keras` file (`keras_file`),
    `batch_input_shape` outside `InputLayer` (the model's `InputLayer`
    holds it too)."""
    if isinstance(node, list):
        return [_keras2_config_for_ours(v, keras_file) for v in node]
    if not isinstance(node, dict):
        return node
    policy = keras2_policy_name(node)
    if policy is not node:  # a Keras 2 dtype policy, now its name
        return policy
    config = node.get("config")
    if (node.get("class_name") in _KERAS2_MODEL_CLASSES
            and isinstance(config, dict) and "output_layers" in config):
        node = {**node, "config": _keras2_nested_model_references(config)}
    node = {k: _keras2_config_for_ours(v, keras_file) for k, v in node.items()}
    name, config = node.get("class_name"), node.get("config")
    if name in KERAS2_CUDNN_CLASSES and isinstance(config, dict):
        name = node["class_name"] = KERAS2_CUDNN_CLASSES[name]
        if name == "GRU":
            config = {**config, "reset_after": True}
    if isinstance(config, dict):
        config = keras2_hard_sigmoid_config(config, _KERAS2_HARD_SIGMOID)
        if name not in KERAS2_CLASSES:  # ours read the rest themselves
            if config.pop("time_major", False):
                raise ValueError(
                    "time_major=True is not supported: the model's layer "
                    f"{config.get('name')!r} reads time-major inputs"
                )
            if keras_file and name != "InputLayer":
                config.pop("batch_input_shape", None)
        node["config"] = config
    if name in _KERAS2_INITIAL_STATE_LAYERS and node.get("inbound_nodes"):
        node["inbound_nodes"] = _keras2_initial_state_nodes(node)
        shape = (node.get("build_config") or {}).get("input_shape")
        if shape and isinstance(shape[0], list):  # with the states' shapes
            node["build_config"]["input_shape"] = shape[0]
    if name in KERAS2_CLASSES:
        node.pop("module", None)
        node.pop("registered_name", None)
    elif name == "Functional" and str(node.get("module")).startswith(
        "tf_keras."
    ):
        node["module"] = "keras.src.models.functional"
    return node


def load_keras2_model(filepath, custom_objects=None, compile=False,
                      safe_mode=True):
    """Load a whole Keras 2 model file (`model.save("model.h5")` of
    `tf.keras` 2.x / `tf_keras`, or `tf_keras`'s `.keras`) into Keras 3,
    with our `LSTM`, `GRU`, `LSTMCell`, `GRUCell` and `PeepholeLSTMCell`
    in place of Keras 2's wherever they sit (`Bidirectional`, `RNN`,
    `TimeDistributed`), and Keras 2's numbers: `"hard_sigmoid"`, in any
    layer, is read as `"keras2_hard_sigmoid"`, with a warning. Keras 2's
    GPU-only `CuDNNLSTM` / `CuDNNGRU` (in `.h5` files) become our `LSTM` /
    `GRU(reset_after=True)`, which compute their function anywhere, with
    their weights converted (`from_keras2_cudnn`).

    `keras.models.load_model(path, custom_objects={"LSTM": krp.LSTM})`
    does this only for the top-level layers of an `.h5` file: inside
    `Bidirectional` (and everywhere in a `.keras` file), Keras 2 names the
    class by module and Keras 3 builds its own `LSTM`, which rejects Keras
    2's `time_major`; and Keras 3 reads `"hard_sigmoid"` with its own
    formula. Also read: a recurrent layer called with `initial_state`
    (Keras 2 saved the states as more inputs of the call), models nested
    in a functional model (Keras 2 numbered their calls from 1), Keras 2's
    dtype policies, and a GRU config from before Keras 2.1.3 (no
    `reset_after`: it was False). What Keras 3 cannot read in Keras 2
    files otherwise (among others: `SpatialDropout1D`, TensorFlow ops
    applied to Keras tensors, `Attention` in `.h5` files, Keras 2's loss
    and metric names and optimizer configs with `compile=True`; RNN
    `constants`) it cannot load here either. A file saved by Keras 3, or a
    SavedModel directory, raises `ValueError`.

    Args:
        filepath: A Keras 2 model file, HDF5 (`.h5`) or `tf_keras`'s
            `.keras`; it is not modified.
        custom_objects: More classes or functions the model needs.
        compile: Keras 3's restore of the training configuration. Keep
            `False` and compile the loaded model again: in Keras 3.15 it
            fails on Keras 2's loss names and on optimizer configs in
            `.keras` files, and the optimizer it builds from an `.h5` file
            cannot train the model (for Keras's own layers too).
        safe_mode: As in `keras.models.load_model`: `False` loads a
            trusted file's `Lambda` layers.

    Returns:
        The Keras 3 model, with the file's weights.
    """
    import keras

    import keras_rnn_plus as krp

    objects = {name: getattr(krp, name) for name in KERAS2_CLASSES}
    # Keras's cells that Keras 2 named without a module (inside `RNN`).
    objects.update(StackedRNNCells=keras.layers.StackedRNNCells,
                   SimpleRNNCell=keras.layers.SimpleRNNCell)
    objects.update(custom_objects or {})
    if os.path.isdir(filepath):
        raise ValueError(
            f"{filepath} is a directory (a SavedModel?): load_keras2_model "
            "reads `.h5` and `.keras` files; in Keras 2, save the model with "
            "`model.save('model.h5')` and load that"
        )
    with tempfile.TemporaryDirectory() as tmp:
        if zipfile.is_zipfile(filepath):  # a `.keras` file of `tf_keras`
            copy = os.path.join(tmp, "keras2_model.keras")
            _copy_keras_file(filepath, copy)
        else:
            copy = os.path.join(tmp, "keras2_model.h5")
            _copy_h5_file(filepath, copy)
        return keras.models.load_model(
            copy, custom_objects=objects, compile=compile,
            safe_mode=safe_mode,
        )


def _check_keras2_file(source, version):
    """Refuse a file that a later Keras saved: its configs are not Keras
    2's (`"hard_sigmoid"` there is Keras 3's own function)."""
    if isinstance(version, bytes):
        version = version.decode()
    major = str(version or "").split(".")[0]
    if major.isdigit() and int(major) >= 3:
        raise ValueError(
            f"{source} was saved by Keras {version}, not Keras 2: load it "
            "with `keras.saving.load_model`"
        )


def _copy_keras_file(source, target):
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        if "metadata.json" in old.namelist():
            metadata = json.loads(old.read("metadata.json"))
            _check_keras2_file(source, metadata.get("keras_version"))
        for item in old.infolist():
            data = old.read(item)
            if item.filename == "config.json":
                config = json.loads(data)
                cudnn = sorted(_cudnn_classes(config))
                if cudnn:
                    raise ValueError(
                        f"{source}: Keras 2's {' and '.join(cudnn)} load "
                        "from `.h5` model files only; save the model with "
                        "`model.save('model.h5')` in Keras 2 and load that"
                    )
                data = json.dumps(_keras2_config_for_ours(config, True))
            new.writestr(item, data)


def _copy_h5_file(source, target):
    import h5py

    shutil.copyfile(source, target)
    with h5py.File(target, "r+") as f:
        _check_keras2_file(source, f.attrs.get("keras_version"))
        if "model_config" not in f.attrs:
            raise ValueError(
                f"{source} holds no model config: for a weights file, "
                "build the model with our layers and `load_weights` it"
            )
        config = json.loads(f.attrs["model_config"])
        if _cudnn_classes(config):
            _convert_cudnn_weights(f["model_weights"])
        f.attrs["model_config"] = json.dumps(_keras2_config_for_ours(config))


def _cudnn_classes(node):
    """The Keras 2 cuDNN classes that a model config uses."""
    if isinstance(node, list):
        return set().union(*map(_cudnn_classes, node))
    if not isinstance(node, dict):
        return set()
    found = set().union(*map(_cudnn_classes, node.values()))
    if node.get("class_name") in KERAS2_CUDNN_CLASSES:
        found.add(node["class_name"])
    return found


def _convert_cudnn_weights(weights):
    """Rewrite, in an open `.h5` model file's weights group, the weights of
    every `CuDNNLSTM` / `CuDNNGRU` (told apart, as Keras 2 did, by the
    bias: two per gate) into ours (`from_keras2_cudnn`), same names."""
    import h5py

    names = ("kernel:0", "recurrent_kernel:0", "bias:0")
    groups = []
    weights.visititems(
        lambda _, g: groups.append(g)
        if isinstance(g, h5py.Group) and all(n in g for n in names) else None
    )
    for group in groups:
        kernel, recurrent, bias = (group[n][()] for n in names)
        units = recurrent.shape[0] if recurrent.ndim == 2 else 0
        if not units or bias.shape != (2 * recurrent.shape[1],) or (
            recurrent.shape[1] not in (3 * units, 4 * units)
        ):
            continue
        for name, value in zip(names,
                               from_keras2_cudnn(kernel, recurrent, bias)):
            del group[name]
            group.create_dataset(name, data=value)
