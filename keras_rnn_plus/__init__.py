"""keras_rnn_plus: recurrent layers for Keras 3.

Drop-in reimplementations of `keras.layers.LSTM`, `LSTMCell`, `GRU` and
`GRUCell` (same arguments, weights and numbers), and the variants Keras
dropped.

    import keras_rnn_plus as krp
    layer = krp.LSTM(32)
"""

from keras_rnn_plus import activations, deploy, porting
from keras_rnn_plus.gru import GRU, GRUCell
from keras_rnn_plus.lstm import (
    LSTM,
    LSTMCell,
    PeepholeLSTM,
    PeepholeLSTMCell,
)

__version__ = "0.1.0"

__all__ = [
    "GRU",
    "GRUCell",
    "LSTM",
    "LSTMCell",
    "PeepholeLSTM",
    "PeepholeLSTMCell",
    "activations",
    "deploy",
    "porting",
]
