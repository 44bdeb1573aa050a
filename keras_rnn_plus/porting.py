"""Weight converters for models trained elsewhere.

Each returns a list in `krp.LSTM(...).get_weights()` order (`kernel`,
`recurrent_kernel`, `bias`, peephole weights i, f, o, `projection_kernel`),
ready for `layer.set_weights(...)`.
"""

import numpy as np


def _reorder(matrix, order, units):
    """Permute the gate blocks of the last axis into Keras's i, f, c, o."""
    blocks = [matrix[..., k * units:(k + 1) * units] for k in range(4)]
    return np.concatenate([blocks[k] for k in order], axis=-1)


def _array(name, value, shape):
    """`value` as an array of `shape` (`None`: any size on that axis)."""
    array = np.asarray(value)
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
    if bias.shape[0] % 4:
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


def from_torch_lstm(weight_ih, weight_hh, bias_ih=None, bias_hh=None,
                    weight_hr=None):
    """Convert one layer and direction of PyTorch's `nn.LSTM`.

    PyTorch keeps `weight_ih_l0` `(4 * units, input_dim)`, `weight_hh_l0`
    `(4 * units, h_dim)`, two biases, gate order i, f, g, o (the same as
    Keras's), and with `proj_size` a `weight_hr_l0` `(num_proj, units)`.
    Pass numpy arrays (`tensor.detach().numpy()`); use the result in
    `krp.LSTM(units, num_proj=proj_size or None)`.

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
    if gates % 4:
        raise ValueError(
            f"weight_ih must be (4 * units, input_dim); got {weight_ih.shape}"
        )
    h_dim = gates // 4 if weight_hr is None else np.shape(weight_hr)[0]
    weight_hh = _array("weight_hh", weight_hh, (gates, h_dim))
    weights = [weight_ih.T, weight_hh.T]
    if (bias_ih is None) != (bias_hh is None):
        raise ValueError("give both bias_ih and bias_hh, or neither")
    if bias_ih is not None:
        weights.append(_array("bias_ih", bias_ih, (gates,))
                       + _array("bias_hh", bias_hh, (gates,)))
    if weight_hr is not None:
        weights.append(_array("weight_hr", weight_hr, (h_dim, gates // 4)).T)
    return weights
