"""Shared experiment helpers: fit drawing and labels, figure sizes, number formatting."""

import numpy as np
import pytest

import spectral_jax as sj
from spectral_jax.experiments._figures import draw_power_law, new_figure, power_label, sci


def test_power_law_band_and_label_follow_the_decay_convention():
    rng = np.random.default_rng(0)
    x = np.geomspace(10, 1000, 12)
    fit = sj.fit_power_law(x, 3.0 * x**-1.3 * np.exp(0.05 * rng.normal(size=x.size)))
    assert fit.ci_low < 1.3 < fit.ci_high  # decay exponent, positive for a falling law
    label = power_label("n", fit)
    assert label.startswith("$n^{-1.3") and r"\pm" in label
    assert power_label("n", sj.fit_power_law(x, x**0.5)).startswith("$n^{+0.50")

    fig, ax = new_figure()
    draw_power_law(ax, fit, x, color="C0")
    line = ax.lines[0].get_ydata()
    band = ax.collections[0].get_paths()[0].vertices[:, 1]
    assert band.min() <= line.min() * (1 + 1e-9) and band.max() >= line.max() * (1 - 1e-9)
    grid = ax.lines[0].get_xdata()
    np.testing.assert_allclose(line, fit(grid), rtol=1e-12)
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_new_figure_panels_are_readable_sizes():
    fig, axes = new_figure([["a", "a"], ["b", "c"]], panel=(5.0, 4.0))
    assert tuple(fig.get_size_inches()) == (10.0, 8.0) and set(axes) == {"a", "b", "c"}
    fig2, (left, right) = new_figure(ncols=2)
    assert tuple(fig2.get_size_inches()) == (14.0, 4.5)
    assert left.xaxis.get_ticklabels()[0].get_fontsize() >= 9
    import matplotlib.pyplot as plt

    plt.close(fig)
    plt.close(fig2)


@pytest.mark.parametrize(
    "value, text",
    [(2.4517e-11, "2.5e-11"), (0.0312, "0.031"), (12.0, "12"), (1733.2, "1733"),
     (123456.0, "1.2e5"), (0.0, "0"), (float("nan"), "nan")],
)
def test_sci(value, text):
    assert sci(value) == text
