"""Typed options of the renormalized shell model: face reconstruction and closure kind.

Both are enums (hashable, so they can be static fields of an `equinox.Module` and static
arguments of `jax.jit`). Strings (`"upwind"`, `"drift"`, ...) are still accepted for one
release and converted with a `DeprecationWarning`; pass the enum members instead.
"""

from __future__ import annotations

import enum
import warnings

__all__ = ["ClosureKind", "Reconstruction", "as_closure_kind", "as_reconstruction"]


class Reconstruction(enum.Enum):
    """How the energy density at a shell face is rebuilt from the two shell energies.

    On a power-law profile $\\varepsilon(u) \\propto e^{-\\sigma u}$ ($x = \\sigma\\Delta u$), each
    scheme reads the face density off by a factor (docs/theory.md §2.5):

    - `UPWIND`: the shell the drift comes from; $(1-e^{-x})/x$. First order, positivity
      preserving; its bias depends on the shell ratio.
    - `CENTRAL`: the mean of the two shells; $\\sinh x/x$.
    - `GEOMETRIC`: $\\sqrt{E_sE_{s+1}}/\\Delta u$; $2\\sinh(x/2)/x$.
    - `EXPONENTIAL`: $E_sE_{s+1}\\ln(E_s/E_{s+1})/((E_s-E_{s+1})\\Delta u)$, the face value of
      the exponential through both shell integrals: exact (factor 1) at every shell ratio, so
      it is the reconstruction for renormalizability tests.
    """

    UPWIND = "upwind"
    CENTRAL = "central"
    GEOMETRIC = "geometric"
    EXPONENTIAL = "exponential"


class ClosureKind(enum.Enum):
    """Which power-law transport terms a closure has (docs/theory.md §2.5).

    `NONE` (lazy: no flux), `DRIFT` ($D_0 = 0$), `DRIFT_DIFFUSION` (one (a, b) for both). A
    user-supplied closure is any callable `(energy, centers, t) -> flux` (see `solve_shells`).
    """

    NONE = "none"
    DRIFT = "drift"
    DRIFT_DIFFUSION = "drift+diffusion"


def _coerce(value, enum_type, name: str):
    if isinstance(value, enum_type):
        return value
    choices = ", ".join(f"{enum_type.__name__}.{m.name}" for m in enum_type)
    if isinstance(value, str):
        try:
            member = enum_type(value)
        except ValueError:
            raise ValueError(f"{name} must be one of {choices}, got {value!r}") from None
        warnings.warn(
            f"{name}={value!r}: strings are deprecated, pass {enum_type.__name__}."
            f"{member.name}",
            DeprecationWarning,
            stacklevel=4,
        )
        return member
    raise TypeError(f"{name} must be one of {choices}, got {value!r} ({type(value).__name__})")


def as_reconstruction(scheme, name: str = "scheme") -> Reconstruction:
    """`scheme` as a `Reconstruction` (a string is converted with a `DeprecationWarning`)."""
    return _coerce(scheme, Reconstruction, name)


def as_closure_kind(kind, name: str = "kind") -> ClosureKind:
    """`kind` as a `ClosureKind` (a string is converted with a `DeprecationWarning`)."""
    return _coerce(kind, ClosureKind, name)
