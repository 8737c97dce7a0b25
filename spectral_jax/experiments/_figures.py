"""One figure style for every experiment: readable at 100% zoom, the claim in the title.

- `new_figure` sizes panels at about 7 × 4.5 inches (at the 120 dpi of `save_figure`, an
  840 × 540 pixel panel) with constrained layout, so tick labels and titles never overlap.
- Text is at least 9 pt (ticks 9 pt, everything else matplotlib's 10 pt); pass no smaller size.
- `claim_title` puts the claim and the number that proves it on top of the figure.
- `sci` formats a number for a title: `2.5e-11`, `0.031`, `12`, `1733`.
- `draw_power_law` draws a `PowerLawFit` (decay convention, $y \\propto x^{-p}$) with its 95%
  band, and `power_label` writes it as $x^{-p \\pm h}$.
matplotlib is imported inside the functions, with the Agg backend only if none is chosen yet.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["claim_title", "draw_power_law", "half_width", "new_figure", "power_label", "sci"]

PANEL = (7.0, 4.5)
_STYLE = {
    "font.size": 10,
    "axes.titlesize": 10,
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "figure.titlesize": 11,
}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def new_figure(mosaic=None, *, panel: tuple[float, float] = PANEL, nrows=1, ncols=1):
    """A figure with constrained layout and panels of about `panel` inches.

    **Arguments:** either `mosaic` (a `subplot_mosaic` layout: list of rows of names) or
    `nrows`, `ncols`; `panel`: (width, height) of one grid cell in inches.
    **Returns:** `(fig, axes)`: a dict by name for a mosaic, else what `plt.subplots` returns.
    """
    plt = _pyplot()
    if mosaic is not None:
        nrows, ncols = len(mosaic), max(len(row) for row in mosaic)
    size = (panel[0] * ncols, panel[1] * nrows)
    with plt.rc_context(_STYLE):
        if mosaic is not None:
            fig, axes = plt.subplot_mosaic(mosaic, figsize=size, layout="constrained")
        else:
            fig, axes = plt.subplots(nrows, ncols, figsize=size, layout="constrained")
    # Later text (legends, labels drawn by the caller) takes these sizes too.
    for ax in (axes.values() if isinstance(axes, dict) else getattr(axes, "flat", [axes])):
        ax.tick_params(labelsize=_STYLE["xtick.labelsize"])
    return fig, axes


def claim_title(fig, claim: str, detail: str | None = None) -> None:
    """Title the figure with its claim (and an optional second line of detail)."""
    text = claim if detail is None else f"{claim}\n{detail}"
    fig.suptitle(text, fontsize=_STYLE["figure.titlesize"])


def sci(value: float, digits: int = 2) -> str:
    """`value` with `digits` significant figures, in e-notation outside [1e-3, 1e4)."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    if 1e-3 <= abs(value) < 1e4:
        # Whole numbers keep all their digits: 1733, not 1.7e+03.
        return f"{value:.0f}" if abs(value) >= 10**digits else f"{value:.{digits}g}"
    mantissa, exponent = f"{value:.{digits - 1}e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def half_width(fit) -> float:
    """Half the 95% interval of a `PowerLawFit`'s exponent (the ± of a label)."""
    return 0.5 * (fit.ci_high - fit.ci_low)


def power_label(base: str, fit) -> str:
    """Mathtext $\\text{base}^{-p \\pm h}$ for a fit $y \\propto x^{-p}$ (`base`: TeX, e.g. `n`)."""
    sign = "-" if fit.exponent >= 0 else "+"
    return rf"${base}^{{{sign}{abs(fit.exponent):.2f} \pm {half_width(fit):.2f}}}$"


def draw_power_law(ax, fit, x_fitted, *, color, label=None):
    """Draw the fit over the range of `x_fitted` and its 95% band of exponents.

    The band's lines pass through the fit at the log-centre of `x_fitted` (where least squares
    pins the line best) with the exponents `ci_low` and `ci_high`, so they fan out from there.
    """
    x_fitted = np.asarray(x_fitted, dtype=np.float64)
    grid = np.geomspace(x_fitted.min(), x_fitted.max(), 64)
    centre = np.mean(np.log(x_fitted))
    log_y0 = np.log(fit.prefactor) - fit.exponent * centre
    lines = [np.exp(log_y0 - p * (np.log(grid) - centre)) for p in (fit.ci_low, fit.ci_high)]
    ax.plot(grid, fit(grid), "-", color=color, lw=1, label=label)
    ax.fill_between(grid, np.minimum(*lines), np.maximum(*lines), color=color, alpha=0.15, lw=0)
