"""Transport velocity profiles $v(\\lambda)$ to plant in a `TransportChain`.

docs/theory.md §2.5 uses the sign convention $v < 0$ for transport toward large λ. A power law
(`PowerLawVelocity`) is what a drift closure can represent exactly; the other two are
deliberately *not* power laws, the alternatives against which a renormalizability test is
calibrated (`calibration.renormalizability_null`).
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp

__all__ = ["BrokenPowerLawVelocity", "BumpVelocity", "PowerLawVelocity"]


class PowerLawVelocity(eqx.Module):
    """$v(\\lambda) = -v_0(\\lambda/\\lambda_\\text{ref})^a$ (a = `space_exponent`)."""

    v0: float
    space_exponent: float
    lam_ref: float = 1.0

    def __call__(self, lam):
        return -self.v0 * (lam / self.lam_ref) ** self.space_exponent


class BrokenPowerLawVelocity(eqx.Module):
    """$-v_0(\\lambda/\\lambda_b)^{a_1}$ for $\\lambda \\ge \\lambda_b$ and
    $-v_0(\\lambda/\\lambda_b)^{a_2}$ below: continuous, with a kink at `lam_break`."""

    v0: float
    exponent_above: float
    exponent_below: float
    lam_break: float

    def __call__(self, lam):
        x = lam / self.lam_break
        return -self.v0 * jnp.where(x >= 1, x**self.exponent_above, x**self.exponent_below)


class BumpVelocity(eqx.Module):
    """A power law times $1 + A\\exp(-\\ln^2(\\lambda/\\lambda_c)/(2w^2))$: a log-normal bump
    of relative height `amplitude` A and log-width `width` w at `lam_center`."""

    v0: float
    space_exponent: float
    amplitude: float
    lam_center: float
    width: float

    def __call__(self, lam):
        bump = jnp.exp(-jnp.log(lam / self.lam_center) ** 2 / (2 * self.width**2))
        return -self.v0 * lam**self.space_exponent * (1.0 + self.amplitude * bump)
