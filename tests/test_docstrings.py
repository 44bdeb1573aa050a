"""The examples in the docstrings run and print what they say."""

import doctest
import importlib

import pytest

MODULES = [
    "keras_rnn_plus.activations",
    "keras_rnn_plus.lstm",
    "keras_rnn_plus.gru",
    "keras_rnn_plus.porting",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(
        module, optionflags=doctest.NORMALIZE_WHITESPACE, verbose=False
    )
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0


@pytest.mark.parametrize("cls", ["LSTM", "LSTMCell", "GRU", "GRUCell"])
def test_docstrings_document_every_argument(cls):
    import inspect

    import keras_rnn_plus as krp

    obj = getattr(krp, cls)
    doc = obj.__doc__
    positional = []
    for name, p in inspect.signature(obj).parameters.items():
        if p.kind == p.VAR_KEYWORD:
            continue
        assert f"{name}:" in doc, f"{cls} docstring misses {name}"
        if p.kind == p.POSITIONAL_OR_KEYWORD:
            positional.append(name)
    # Positional arguments are documented in the signature's order.
    documented = sorted(positional, key=lambda n: doc.index(f"\n        {n}:"))
    assert documented == positional
    for section in ("Args:", "Call arguments:", "Example"):
        assert section in doc, f"{cls} docstring misses {section}"
