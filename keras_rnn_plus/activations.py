"""Activations that Keras 3 no longer ships under their old meaning."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_rnn_plus")
def keras2_hard_sigmoid(x):
    """Keras 2's hard sigmoid: `clip(0.2 * x + 0.5, 0, 1)`.

    Keras 3's `"hard_sigmoid"` is `clip(x / 6 + 0.5, 0, 1)`; Keras 2 models
    with `"hard_sigmoid"` (the default gate activation of standalone Keras
    up to 2.2, of `tf.keras` in TensorFlow 1 and of `PeepholeLSTMCell`;
    `tf.keras` 2.x and `tf_keras` default to `"sigmoid"`) need this one to
    give the same numbers. Pass it as
    `recurrent_activation="keras2_hard_sigmoid"` (or the function itself);
    it serializes by name.

    Example:

    >>> import numpy as np
    >>> from keras_rnn_plus.activations import keras2_hard_sigmoid
    >>> np.asarray(keras2_hard_sigmoid(np.array([-3.0, 0.0, 1.0])))
    array([0. , 0.5, 0.7])
    """
    x = ops.convert_to_tensor(x)
    return ops.clip(0.2 * x + 0.5, 0.0, 1.0)


BY_NAME = {"keras2_hard_sigmoid": keras2_hard_sigmoid}
