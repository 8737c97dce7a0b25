"""Run-time checks of the package's jaxtyping annotations (shapes, dtypes, types) in the tests.

`tests/conftest.py` installs jaxtyping's import hook with `typechecker` below before anything
imports `spectral_jax`, so every function and dataclass of the package is checked by beartype
when called (under `jit`, once per trace).

The checks step aside where a test feeds invalid input on purpose (`unchecked`, used by
conftest around `pytest.raises` blocks): there the library's own error, which names the
argument and the bad value, is what is under test, and an annotation check would pre-empt it.
"""

from __future__ import annotations

import contextlib
import functools

import beartype

_enabled = True
# The PEP 484 numeric tower, as static type checkers read `float`: an int is accepted.
_CONF = beartype.BeartypeConf(is_pep484_tower=True)


def typechecker(fn):
    """beartype, switchable off by `unchecked` (jaxtyping calls this once per function)."""
    checked = beartype.beartype(fn, conf=_CONF)

    @functools.wraps(fn)
    def check(*args, **kwargs):
        return (checked if _enabled else fn)(*args, **kwargs)

    return check


@contextlib.contextmanager
def unchecked():
    """No annotation checks inside the block."""
    global _enabled
    before, _enabled = _enabled, False
    try:
        yield
    finally:
        _enabled = before


class _RaisesUnchecked:
    """A `pytest.raises` context with the annotation checks off inside."""

    def __init__(self, context):
        self._context, self._off = context, unchecked()

    def __enter__(self):
        self._off.__enter__()
        return self._context.__enter__()

    def __exit__(self, *exc_info):
        try:
            return self._context.__exit__(*exc_info)
        finally:
            self._off.__exit__(None, None, None)

    def __getattr__(self, name):
        return getattr(self._context, name)


def raises_unchecked(pytest_raises):
    """`pytest.raises` with the annotation checks off where the exception is expected."""

    @functools.wraps(pytest_raises)
    def raises(*args, **kwargs):
        if len(args) > 1:  # the function form: pytest.raises(E, func, *args)
            with unchecked():
                return pytest_raises(*args, **kwargs)
        return _RaisesUnchecked(pytest_raises(*args, **kwargs))

    return raises
