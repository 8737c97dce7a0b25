"""Transitional re-exports: the operators now live in `base`, `closed_form` and `interpolated`.

Import from `spectral_jax.operators` (or `spectral_jax`) instead.
"""

from .base import (
    AbstractOperator as AbstractOperator,
    CallableOperator as CallableOperator,
    FrozenOperator as FrozenOperator,
)
from .closed_form import RotatingPowerLaw as RotatingPowerLaw, banded_generator as banded_generator
from .interpolated import InterpolatedOperator as InterpolatedOperator
