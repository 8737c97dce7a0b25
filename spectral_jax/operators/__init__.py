"""Where M(t) comes from: operators with a value and an exact time derivative."""

from .base import AbstractOperator as AbstractOperator
from .base import CallableOperator as CallableOperator
from .base import FrozenOperator as FrozenOperator
from .closed_form import RotatingPowerLaw as RotatingPowerLaw
from .closed_form import banded_generator as banded_generator
from .interpolated import InterpolatedOperator as InterpolatedOperator
