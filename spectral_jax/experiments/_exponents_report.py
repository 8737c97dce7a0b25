"""Report of the `exponents` sweep: fits, table, collapses and figure from stored records."""

from __future__ import annotations

import numpy as np

from ..sweep import Record

__all__ = ["build_result", "figure"]

_ORDER = ("lazy", "drift", "covariant")


def _row(record: Record, params) -> tuple[dict, tuple]:
    """The table row of one record (fits from its stored curves) and its figure curves."""
    from ..renorm import exponents as ex

    out = record.outputs
    a, b = params.drift
    t_lo, t_hi = (float(v) for v in out["window"])
    ts, micro_loss, ode_loss = out["ts"], out["micro_loss"], out["ode_loss"]
    micro = ex.measure_exponent(ts, micro_loss, t_lo, t_hi)
    ode_same = ex.measure_exponent(ts, ode_loss, t_lo, t_hi)
    late = ex.measure_exponent(out["late_ts"], out["late_total"], params.late_t_min,
                               params.late_t_max)
    row = {
        "alpha": params.alpha, "beta": params.beta,
        "sigma": ex.sigma(params.alpha, params.beta), "regime": params.regime.value,
        "space_exponent": a, "time_exponent": b, "v0": None if a is None else params.v0,
        "formula": params.formula(),
        "ode_same_window": ode_same.exponent, "ode_late_window": late.exponent,
        "micro": micro.exponent, "micro_ci": [micro.ci_low, micro.ci_high],
        "window": [t_lo, t_hi], "late_window": [params.late_t_min, params.late_t_max],
        "micro_steps": int(out["micro_steps"]) if "micro_steps" in out else None,
        "loss_ratio_ode_micro": float(np.median(ode_loss / micro_loss)),
    }
    return row, (ts, micro_loss, ode_loss)


def build_result(records: list[Record]):
    """**Returns:** `(result, curves, (lazy_collapse, drift_collapse))`; `curves`: label →
    (ts, micro loss, shell ODE loss) of each row; a collapse is None without its record."""
    from ..renorm import exponents as ex
    from .exponents import Parameters

    params = {r.config_id: Parameters.from_mapping(r.config) for r in records}
    transport = [p.v0 for p in params.values() if p.drift[0] is not None]
    base_v0 = min(transport) if transport else None  # larger v0: the strong-transport runs

    def key(record):
        p = params[record.config_id]
        strong = p.drift[0] is not None and p.v0 != base_v0
        return (strong, p.v0 if strong else 0.0, p.alpha, p.beta, _ORDER.index(p.regime))

    rows, labels, curves, failed, kept = [], [], {}, [], []
    for record in sorted(records, key=key):
        p = params[record.config_id]
        error = record.error or "failed"
        if record.ok:
            try:
                row, curve = _row(record, p)
            except ValueError as exc:  # e.g. fewer than 3 times in a fit window
                error = f"fit: {exc}"
            else:
                rows.append(row)
                kept.append(record)
                label = (p.regime.value if row["v0"] in (None, base_v0)
                         else f"{p.regime.value} v0={p.v0:g}")
                curves[(p.alpha, p.beta, label)] = curve
                labels.append(label)
                continue
        failed.append({"config": dict(record.config), "config_id": record.config_id,
                       "error": error})
    # Self-similar collapse of the first (α, β): lazy microscopic shells vs λ_s t; drift
    # shell ODE (late window) vs λ_s^a t^{1+b}.
    lazy_collapse = lazy_time_only = drift_collapse = None
    first = (rows[0]["alpha"], rows[0]["beta"]) if rows else None
    for record, row in zip(kept, rows):
        if (row["alpha"], row["beta"]) != first or row["v0"] not in (None, base_v0):
            continue
        out = record.outputs
        if row["regime"] == "lazy":
            centers = out["collapse_centers"]
            use = np.arange(3, centers.shape[0] - 4)  # shells 3 .. count - 3
            lazy_collapse = ex.similarity_collapse(out["collapse_ts"], out["collapse_energy"],
                                                   centers, shells=use)
            lazy_time_only = ex.similarity_collapse(
                out["collapse_ts"], out["collapse_energy"], centers, space_exponent=0.0,
                shells=use)
        elif row["regime"] == "drift":
            keep = out["late_ts"] > 0
            drift_collapse = ex.similarity_collapse(
                out["late_ts"][keep], out["late_energy"][keep], out["late_centers"],
                space_exponent=0.5, time_exponent=0.0, shells=np.arange(20, 60))
    same = [abs(r["micro"] - r["ode_same_window"]) for r in rows if r["v0"] in (None, base_v0)]
    seconds = [r.meta.get("run_seconds") for r in records]
    exponents = [{
        "quantity": f"L ∝ t^-p, microscopic: α={r['alpha']:g} β={r['beta']:g} {label}",
        "measured": r["micro"], "ci_low": r["micro_ci"][0], "ci_high": r["micro_ci"][1],
        "predicted": r["formula"],
    } for r, label in zip(rows, labels)]
    result = {
        "configurations": [dict(r.config) for r in kept],
        "rows": rows,
        "failed": failed,
        "max_abs_error_micro_vs_ode_same_window": max(same) if same else None,
        "strong_transport_breakdown": [r for r in rows if r["v0"] not in (None, base_v0)],
        "max_abs_error_formula_vs_ode_late": (
            max(abs(r["formula"] - r["ode_late_window"]) for r in rows) if rows else None),
        "collapse": {
            "lazy_spread_lambda_t": None if lazy_collapse is None else lazy_collapse.spread,
            "lazy_spread_t_only": None if lazy_time_only is None else lazy_time_only.spread,
            "drift_spread_lambda_a_t": None if drift_collapse is None else drift_collapse.spread,
        },
        "seconds": float(sum(s for s in seconds if s is not None)),
        "exponents": exponents,
    }
    return result, curves, (lazy_collapse, drift_collapse)


def _bound(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def figure(result, curves, lazy_collapse, drift_collapse):
    from matplotlib.figure import Figure

    rows = result["rows"]
    fig = Figure(figsize=(14, 9.5), layout="constrained")
    axes = fig.subplots(2, 2).ravel()
    fig.suptitle(
        "Decay exponents of L(t) three ways agree: |formula − late shell ODE| ≤ "
        f"{_bound(result['max_abs_error_formula_vs_ode_late'])}, |micro − shell ODE| ≤ "
        f"{_bound(result['max_abs_error_micro_vs_ode_same_window'])}",
        fontsize=13,
    )
    ax = axes[0]
    f = np.array([r["formula"] for r in rows])
    for key, marker, label in (("ode_late_window", "o", "shell ODE (late window)"),
                               ("ode_same_window", "s", "shell ODE (micro window)"),
                               ("micro", "x", "microscopic")):
        ax.scatter(f, [r[key] for r in rows], marker=marker, label=label)
    lim = [0, 1.05 * max(f.max(), max(r["micro"] for r in rows))]
    ax.plot(lim, lim, "k:", lw=1)
    micro_err = np.array([[r["micro"] - r["micro_ci"][0], r["micro_ci"][1] - r["micro"]]
                          for r in rows]).T
    ax.errorbar(f, [r["micro"] for r in rows], yerr=micro_err, fmt="none", ecolor="0.5")
    ax.set_xlabel(r"formula $\sigma\,\max(1, (1+b)/a)$")
    ax.set_ylabel(r"measured decay exponent $p$, $L \propto t^{-p}$ (95% CI)")
    ax.legend(fontsize=9)
    ax.set_title("loss exponents, three ways")
    ax = axes[1]
    for (alpha, beta, regime), (ts, micro, ode) in curves.items():
        line, = ax.loglog(ts, micro, label=f"α={alpha:g} β={beta:g} {regime}")
        ax.loglog(ts, ode, ":", color=line.get_color())
    ax.set_xlabel("$t$")
    ax.set_ylabel("$L(t)$ (solid: microscopic, dotted: shell ODE)")
    ax.legend(fontsize=7, ncol=2)
    for ax, collapse, title in (
        (axes[2], lazy_collapse, "lazy collapse (micro)"),
        (axes[3], drift_collapse, "drift collapse (shell ODE)"),
    ):
        if collapse is not None:
            for j in range(collapse.x.shape[1]):
                ax.semilogx(collapse.x[:, j], collapse.y[:, j], lw=1)
            ax.set_title(f"{title}, spread {collapse.spread:.3f}")
        ax.set_ylabel(r"$E_s(t) / E_s(0)$")
    axes[2].set_xlabel(r"$\lambda_s t$")
    axes[3].set_xlabel(r"$\lambda_s^a\, t^{1+b}$")
    return fig
