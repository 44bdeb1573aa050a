import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_keras_session():
    """A fresh Keras session and fixed seeds (Python, NumPy, TensorFlow,
    Keras initializers): every test sees the same weights on every run.
    Without a garbage collection per test (`free_memory`), which took more
    time than most tests themselves."""
    keras.utils.clear_session(free_memory=False)
    keras.utils.set_random_seed(1234)
    yield
