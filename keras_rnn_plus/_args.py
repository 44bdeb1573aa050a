"""Argument validation shared by every layer and cell of the package.

Each helper takes the argument's name so that a bad value is reported as
``ValueError: units must be a positive integer, got 2.5`` at construction,
not as a backend traceback later. An argument of the wrong type raises
`ArgumentTypeError`, which is both a `TypeError` and a `ValueError`:
Keras raises one or the other for the same inputs (`ValueError` for
``seed=1.5`` and ``units=2.5``, `TypeError` for ``units="3"``), and code
written against Keras catches either.
"""

import contextlib
import contextvars
import math
import numbers
import warnings

import keras
import numpy as np

from keras_rnn_plus import activations as _activations


class ArgumentTypeError(TypeError, ValueError):
    """An argument of the wrong type (see the module's docstring)."""


def positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ArgumentTypeError(
            f"{name} must be a positive integer, got {value!r}"
        )
    if value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def finite_number(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ArgumentTypeError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def positive_or_none(name, value):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ArgumentTypeError(
            f"{name} must be a positive number or None, got {value!r}"
        )
    if not value > 0:
        raise ValueError(
            f"{name} must be a positive number or None, got {value!r}"
        )
    return float(value)


# Set while a saved config is read (`from_config`): values that only old or
# Keras-written configs hold are then read the way Keras reads them.
_reading_config = contextvars.ContextVar("reading_config", default=False)


@contextlib.contextmanager
def reading_config():
    token = _reading_config.set(True)
    try:
        yield
    finally:
        _reading_config.reset(token)


def rate(name, value):
    """A dropout rate: a float in [0, 1). A saved config may also hold 1,
    as Keras writes rates it clamped to 1 (and then drops nothing)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ArgumentTypeError(
            f"{name} must be a float in [0, 1), got {value!r}"
        )
    if not (0.0 <= float(value) < 1.0
            or float(value) == 1.0 and _reading_config.get()):
        raise ValueError(f"{name} must be a float in [0, 1), got {value!r}")
    return float(value)


def _is_boolean(value):
    """True/False, or a NumPy bool or integer 0/1 (as from a NumPy grid)."""
    if isinstance(value, (bool, np.bool_)):
        return True
    return isinstance(value, numbers.Integral) and value in (0, 1)


def boolean(name, value):
    if not _is_boolean(value):
        raise ArgumentTypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def batch_input_shape(value):
    """Keras 2's `(batch, timesteps, features)`, each an integer or None
    (a list, tuple, `TensorShape` or array)."""
    if not isinstance(value, (str, bytes)):
        try:
            value = tuple(value)
        except TypeError:
            pass
    if not isinstance(value, tuple) or len(value) != 3 or not all(
        n is None or (isinstance(n, numbers.Integral)
                      and not isinstance(n, bool) and n > 0)
        for n in value
    ):
        raise ArgumentTypeError(
            "batch_input_shape must be a tuple (batch, timesteps, "
            f"features) of positive integers or None, got {value!r}"
        )
    return tuple(None if n is None else int(n) for n in value)


def implementation(value):
    """1 or 2; a saved config's ``implementation=0`` (Keras 2.0) loads as
    1, as Keras 2 did."""
    legacy = value == 0 and not isinstance(value, bool)
    if legacy and _reading_config.get():
        warnings.warn(
            "implementation=0 is a Keras 2.0 value that Keras 2 already "
            "mapped to implementation=1; using implementation=1.",
            stacklevel=3,
        )
        return 1
    if isinstance(value, bool) or value not in (1, 2):
        raise ValueError(
            f"implementation must be 1 or 2, got {value!r}"
            + (" (Keras 2.0's 0 is read as 1 from a saved config only)"
               if legacy else "")
        )
    return int(value)


def use_cudnn(value):
    if isinstance(value, str) and value == "auto":
        return value
    if not _is_boolean(value):
        raise ValueError(
            f"use_cudnn must be one of 'auto', True, False, got {value!r}"
        )
    if not isinstance(value, (bool, np.bool_)) and value == 1:
        # Keras's layers take 1 (`1 in ("auto", True)`) but require the
        # kernel only for `True` itself: 1 acts as "auto" there.
        return "auto"
    return bool(value)


def seed(value):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ArgumentTypeError(
            f"seed must be an integer or None, got {value!r}"
        )
    return int(value)


def activation(name, value):
    """Resolve an activation; also knows this package's named activations."""
    if isinstance(value, str) and value in _activations.BY_NAME:
        return _activations.BY_NAME[value]
    try:
        return keras.activations.get(value)
    except (ValueError, TypeError) as e:
        raise ValueError(
            f"{name} must be an activation name (e.g. 'tanh', 'sigmoid', "
            f"'keras2_hard_sigmoid') or a callable, got {value!r}"
        ) from e


def serialize_activation(fn):
    """This package's activations by their short name, others as Keras."""
    for name, ours in _activations.BY_NAME.items():
        if fn is ours:
            return name
    return keras.activations.serialize(fn)


def _getter(module, what):
    def get(name, value):
        try:
            obj = module.get(value)
        except (ValueError, TypeError) as e:
            raise ValueError(
                f"{name} must be {what} name, config or instance, "
                f"got {value!r}"
            ) from e
        if obj is None and value is not None:
            raise ValueError(f"{name}: could not interpret {value!r}")
        return obj

    return get


initializer = _getter(keras.initializers, "an initializer")
regularizer = _getter(keras.regularizers, "a regularizer")
constraint = _getter(keras.constraints, "a constraint")


def base_layer_kwargs(kwargs):
    """The base-layer keyword arguments, with `activity_regularizer`
    checked like the other regularizers."""
    if kwargs.get("activity_regularizer") is not None:
        kwargs = {**kwargs, "activity_regularizer": regularizer(
            "activity_regularizer", kwargs["activity_regularizer"])}
    return kwargs
