"""Keras's own test suites for its LSTM, GRU, `Bidirectional` and
`StackedRNNCells`, run against our layers: the installed Keras ships them
(`keras/src/layers/rnn/*_test.py`). Each Keras test runs with
`keras.src.layers.LSTM`, `LSTMCell`, `GRU` and `GRUCell` replaced by ours,
so its shapes, weight counts, serialization round trips and expected
numbers (computed by the Keras authors for their layers) check ours.

Left out: Keras's `test_fused_*_eligibility`, which assert that its
`Bidirectional` picks its private fused kernel for Keras's own classes.
"""

import importlib
import inspect
import unittest

import pytest
from keras.src import layers as keras_layers

import keras_rnn_plus as krp

SUITES = ("lstm_test", "gru_test", "bidirectional_test",
          "stacked_rnn_cells_test")
OURS = {"LSTM": krp.LSTM, "LSTMCell": krp.LSTMCell,
        "GRU": krp.GRU, "GRUCell": krp.GRUCell}


def _keras_tests():
    cases = []
    for suite in SUITES:
        try:
            module = importlib.import_module(f"keras.src.layers.rnn.{suite}")
        except ImportError:  # a Keras build without its tests
            continue
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if not issubclass(cls, unittest.TestCase):
                continue
            if cls.__module__ != module.__name__:
                continue
            for name in unittest.defaultTestLoader.getTestCaseNames(cls):
                if not name.startswith("test_fused_"):
                    cases.append(pytest.param(cls, name,
                                              id=f"{suite}.{name}"))
    return cases


CASES = _keras_tests()


@pytest.mark.skipif(not CASES, reason="this Keras build ships no tests")
@pytest.mark.parametrize("case, name", CASES)
def test_keras_suite_with_our_layers(monkeypatch, case, name):
    # The Keras tests' own pytest marks (unittest does not read them).
    for mark in getattr(getattr(case, name), "pytestmark", []):
        condition = mark.args[0] if mark.args else True
        if mark.name == "skipif" and condition:
            pytest.skip(mark.kwargs.get("reason", "skipped by Keras"))
        if mark.name == "xfail" and condition:
            pytest.xfail(mark.kwargs.get("reason", "expected by Keras"))
    for attr, ours in OURS.items():
        monkeypatch.setattr(keras_layers, attr, ours)
    result = unittest.TestResult()
    case(name).run(result)
    problems = result.failures + result.errors
    assert not problems, problems[0][1]
    if result.skipped:  # e.g. GPU-only tests on a CPU
        pytest.skip(result.skipped[0][1])
    assert result.testsRun == 1


def test_the_suites_use_our_layers(monkeypatch):
    """The substitution reaches the Keras tests: they build our classes."""
    if not CASES:
        pytest.skip("this Keras build ships no tests")
    for attr, ours in OURS.items():
        monkeypatch.setattr(keras_layers, attr, ours)
    module = importlib.import_module("keras.src.layers.rnn.lstm_test")
    assert module.layers.LSTM is krp.LSTM
    assert isinstance(module.layers.LSTM(2), krp.LSTM)
