"""Report of the `network_scaling` sweep: fits, predictions, the side-by-side table, figure.

Per run: the loss exponent in t (train and test loss, fitted on the plateau of the local
slope), α from $\\lambda_k \\propto k^{-\\alpha}$ and β from the tail energy
$\\sum_{j\\ge k}\\varepsilon_j \\propto k^{1-\\beta}$ (both on 16 log-spaced ranks in [2, n/2]
of the initial spectrum), and the fitted shell model's exponent. Per group (architecture,
dataset, method): the median t exponent (95% CI: bootstrap of the median over runs, or the
envelope of the per-run intervals below 3 runs), the final test loss against n at fixed p and
against p at fixed n (pooled over seeds; 95% CI: bootstrap over seeds with ≥ 3 seeds per size,
else the fit's Student-t interval), and beside them the formula (σ = (β−1)/α in t,
min(β−1, 2α) in n, β−1 in p: `predicted_resolution_exponents`) from the group's median α, β.
"""

from __future__ import annotations

import pathlib

import numpy as np

from ..sweep import Record, build_parameters
from ._common import publish
from ._figures import claim_title, draw_power_law, new_figure, sci

__all__ = ["build_report"]

NAME = "network_scaling"
_GROUP = ("architecture", "dataset", "method")
_SIZE = {"n": ("n_train", "width"), "p": ("width", "n_train")}  # axis: (size, held fixed)
_LOSSES = ("train_loss", "test_loss")  # t fits: plateau at tolerance 0.1, else 0.2
_CLOSURE = ("closure_v0", "closure_a", "closure_b", "closure_explained_variance",
            "flux_error_2_to_4", "log_shift_spread")


def _fit(x, y, **kw):
    import spectral_jax as sj

    try:
        return sj.fit_power_law(np.asarray(x, float), np.asarray(y, float), **kw)
    except ValueError:
        return None


def _median(values):
    v = [x for x in values if x is not None and np.isfinite(x)]
    return float(np.median(v)) if v else None


def _spectrum_exponents(lam, eps):
    """(α, β): λ_k ∝ k^-α and Σ_{j≥k} ε_j ∝ k^(1-β) on log-spaced ranks in [2, n/2]."""
    n = lam.shape[0]
    k = np.unique(np.round(np.geomspace(2, max(n // 2, 4), 16)).astype(int))
    tail = np.cumsum(eps[::-1])[::-1]
    a, b = _fit(k, lam[k - 1]), _fit(k, tail[k - 1])
    return (None if a is None else a.exponent), (None if b is None else 1.0 + b.exponent)


def _run_row(record: Record) -> dict:
    import spectral_jax as sj
    from spectral_jax.renorm import PlateauWindow
    from spectral_jax.renorm.exponents import sigma

    from .network_scaling import Parameters

    p, out = build_parameters(Parameters, record.config), record.outputs
    ts, lam = out["ts"], out["eigenvalues0"]
    # The lazy picture's range: the frontier 2λt = 1 between ranks 2 and n/2 (the ranks α and
    # β are fitted on); all of t > 0 where that holds fewer than 4 saved times (Adam's t).
    keep = (ts >= 0.5 / lam[1]) & (ts <= 0.5 / lam[max(lam.size // 2 - 1, 1)])
    keep = keep if keep.sum() >= 4 else ts > 0
    fits = {k: _fit(ts[keep], out[k][keep], window=PlateauWindow()) or _fit(
        ts[keep], out[k][keep], window=PlateauWindow(tolerance=0.2)) for k in _LOSSES}
    alpha, beta = _spectrum_exponents(lam, out["target_energy0"])
    sig = sigma(alpha, beta) if alpha and beta and alpha > 0 and beta > 1 else None
    row = {k: getattr(p, k).value if k in _GROUP else getattr(p, k)
           for k in (*_GROUP, "width", "n_train", "seed")}
    fit, test = fits["train_loss"], fits["test_loss"]
    row.update(
        t_exponent=None if fit is None else fit.exponent,
        t_ci=None if fit is None else [fit.ci_low, fit.ci_high],
        t_window=None if fit is None else [fit.x_low, fit.x_high],
        test_t_exponent=None if test is None else test.exponent, alpha=alpha, beta=beta,
        sigma=sig, final_train_loss=float(out["train_loss"][-1]),
        final_test_loss=float(out["test_loss"][-1]), kernel_change=float(out["kernel_change"]),
        kato_residual_error_max=float(out.get("kato_residual_error_max", np.nan)),
        **{k: float(out[k]) for k in _CLOSURE if k in out})
    v0, a, b = (row.get(k, np.nan) for k in _CLOSURE[:3])
    row["shell_model_exponent"] = (
        sj.predicted_exponent(alpha, beta, space_exponent=a, time_exponent=b)
        if sig is not None and v0 > 0 and a > 0 and b > -1 else None)
    return row


def _t_axis(rows) -> dict:
    fitted = [r for r in rows if r["t_exponent"] is not None]
    values = np.array([r["t_exponent"] for r in fitted])
    if not fitted:
        return {"measured": None, "ci_low": None, "ci_high": None, "runs_fitted": 0}
    if len(values) >= 3:
        rng = np.random.default_rng(0)
        medians = np.median(values[rng.integers(0, len(values), (2000, len(values)))], axis=1)
        lo, hi, how = *np.quantile(medians, [0.025, 0.975]), "bootstrap of the median over runs"
    else:
        lo, hi = min(r["t_ci"][0] for r in fitted), max(r["t_ci"][1] for r in fitted)
        how = "envelope of the per-run Student-t intervals"
    return {"measured": float(np.median(values)), "ci_low": float(lo), "ci_high": float(hi),
            "ci_method": how, "runs_fitted": len(fitted),
            "test_loss_measured": _median([r["test_t_exponent"] for r in rows])}


def _slope(x, y):
    lx, ly = np.log(x), np.log(y)
    return -float(np.polyfit(lx, ly, 1)[0])


def _size_axis(rows, axis) -> dict:
    """Final test loss against n (p fixed) or p (n fixed), pooled over seeds."""
    size, fixed = _SIZE[axis]
    by_fixed = {}
    for r in rows:
        by_fixed.setdefault(r[fixed], set()).add(r[size])
    if not by_fixed:
        return {"measured": None, "ci_low": None, "ci_high": None}
    hold = min(by_fixed, key=lambda f: (-len(by_fixed[f]), f))
    pick = [r for r in rows if r[fixed] == hold and r["final_test_loss"] > 0]
    sizes = sorted({r[size] for r in pick})
    base = {f"fixed_{fixed}": hold, "sizes": sizes, "measured": None, "ci_low": None,
            "ci_high": None}
    if len(sizes) < 2:
        return base | {"note": f"fewer than 2 values of {size} at one {fixed}"}
    x = np.array([r[size] for r in pick], float)
    y = np.array([r["final_test_loss"] for r in pick])
    per_size = [y[x == s] for s in sizes]
    means = np.array([np.exp(np.mean(np.log(v))) for v in per_size])
    fit = _fit(x, y)
    base.update(measured=_slope(x, y), mean_loss=means.tolist(), fit=fit)
    if min(len(v) for v in per_size) >= 3:  # bootstrap over seeds, within each size
        rng = np.random.default_rng(0)
        slopes = []
        for _ in range(2000):
            ys = [rng.choice(v, v.size) for v in per_size]
            slopes.append(_slope(np.repeat(sizes, [v.size for v in ys]), np.concatenate(ys)))
        lo, hi = np.quantile(slopes, [0.025, 0.975])
        base.update(ci_low=float(lo), ci_high=float(hi), ci_method="bootstrap over seeds")
    elif fit is not None:
        base.update(ci_low=fit.ci_low, ci_high=fit.ci_high, ci_method="Student-t (pooled fit)")
    return base


def _group(key, rows) -> dict:
    import spectral_jax as sj
    from spectral_jax.renorm.exponents import sigma

    alpha, beta = _median([r["alpha"] for r in rows]), _median([r["beta"] for r in rows])
    ok = alpha is not None and beta is not None and alpha > 0 and beta > 1
    res = sj.predicted_resolution_exponents(alpha, beta) if ok else None
    t = _t_axis(rows) | {"predicted": sigma(alpha, beta) if ok else None,
                         "predicted_shell_model": _median(
                             [r["shell_model_exponent"] for r in rows]),
                         "shell_model_runs": sum(r["shell_model_exponent"] is not None
                                                 for r in rows)}
    n = _size_axis(rows, "n") | {"predicted": res.test_loss_data if ok else None}
    p = _size_axis(rows, "p") | {"predicted": res.loss_floor_width if ok else None}
    diag = {k: _median([r.get(k) for r in rows]) for k in (*_CLOSURE, "kernel_change")}
    kato = [r["kato_residual_error_max"] for r in rows if np.isfinite(r["kato_residual_error_max"])]
    return {**dict(zip(_GROUP, key)), "runs": len(rows), "alpha": alpha, "beta": beta,
            "t": t, "n": n, "p": p, **diag, "closure_runs": sum("closure_v0" in r for r in rows),
            "kato_residual_error_max": max(kato) if kato else None}


def _residual_vs_plain(groups) -> list[dict]:
    out = []
    for g in groups:
        if g["architecture"] != "residual_mlp":
            continue
        for h in groups:
            if h["architecture"] == "mlp" and (h["dataset"], h["method"]) == (
                    g["dataset"], g["method"]):
                out.append({"dataset": g["dataset"], "method": g["method"], **{
                    f"{axis}_residual_minus_plain": (
                        None if None in (g[axis]["measured"], h[axis]["measured"])
                        else g[axis]["measured"] - h[axis]["measured"])
                    for axis in ("t", "n", "p")}})
    return out


def _exponent_rows(groups) -> list[dict]:
    label = {"t": "train loss ∝ t^-p", "n": "test loss ∝ n^-p (fixed p)",
             "p": "test loss ∝ p^-p (fixed n)"}
    rows = []
    for g in groups:
        name = f"{g['architecture']}/{g['dataset']}/{g['method']}"
        for axis in ("t", "n", "p"):
            a = g[axis]
            if a["measured"] is not None:
                rows.append({"quantity": f"{name}: {label[axis]}", "measured": a["measured"],
                             "ci_low": a["ci_low"], "ci_high": a["ci_high"],
                             "predicted": a["predicted"]})
        t = g["t"]
        if t["measured"] is not None and t["predicted_shell_model"] is not None:
            rows.append({"quantity": f"{name}: train loss ∝ t^-p vs fitted shell model",
                         "measured": t["measured"], "ci_low": t["ci_low"],
                         "ci_high": t["ci_high"], "predicted": t["predicted_shell_model"]})
    return rows


def _fmt(v, digits=2):
    return "–" if v is None or not np.isfinite(v) else f"{v:.{digits}f}"


def _ci(a):
    return "" if a.get("ci_low") is None else f" [{_fmt(a['ci_low'])}, {_fmt(a['ci_high'])}]"


def _print(groups, failed, seconds):
    print(f"[{NAME}] measured vs predicted loss exponents (decay p of L ∝ x^-p; 95% CI; "
          f"{seconds:.1f} s of runs)")
    print(f"[{NAME}] {'group':34} runs | {'t: measured':22} σ=(β-1)/α shell | "
          f"{'n: measured':22} pred | {'p: measured':22} pred | α     β")
    for g in groups:
        t, n, p = g["t"], g["n"], g["p"]
        print(f"[{NAME}] {g['architecture'] + '/' + g['dataset'] + '/' + g['method']:34} "
              f"{g['runs']:4} | {_fmt(t['measured']) + _ci(t):22} {_fmt(t['predicted']):9} "
              f"{_fmt(t['predicted_shell_model']):5} | {_fmt(n['measured']) + _ci(n):22} "
              f"{_fmt(n['predicted']):4} | {_fmt(p['measured']) + _ci(p):22} "
              f"{_fmt(p['predicted']):4} | {_fmt(g['alpha'])}  {_fmt(g['beta'])}")
    print(f"[{NAME}] {'group':34} closure v0, a, b   | expl. var | 2->4 flux err | "
          f"log-shift | Kato err")
    for g in groups:
        print(f"[{NAME}] {g['architecture'] + '/' + g['dataset'] + '/' + g['method']:34} "
              f"{_fmt(g['closure_v0'], 3)}, {_fmt(g['closure_a'])}, {_fmt(g['closure_b'])} | "
              f"{_fmt(g['closure_explained_variance']):9} | {_fmt(g['flux_error_2_to_4']):13} | "
              f"{_fmt(g['log_shift_spread']):9} | "
              f"{sci(g['kato_residual_error_max']) if g['kato_residual_error_max'] else '–'}")
    for f in failed:
        print(f"[{NAME}] FAILED {f['config']}: {f['error']}")


def build_report(records: list[Record], out_dir: pathlib.Path) -> dict:
    ok = [r for r in records if r.ok]
    failed = [{"config": dict(r.config), "config_id": r.config_id, "error": r.error}
              for r in records if not r.ok]
    runs = [(_run_row(r), r) for r in ok]
    keys = sorted({tuple(row[k] for k in _GROUP) for row, _ in runs})
    groups = [_group(k, [row for row, _ in runs if tuple(row[c] for c in _GROUP) == k])
              for k in keys]
    seconds = sum(r.meta.get("run_seconds") or 0.0 for r in records)
    result = {
        "groups": [{k: ({a: b for a, b in v.items() if a != "fit"} if isinstance(v, dict)
                        else v) for k, v in g.items()} for g in groups],
        "residual_vs_plain": _residual_vs_plain(groups),
        "runs": [row for row, _ in runs],
        "failed": failed,
        "exponents": _exponent_rows(groups),
        "seconds": seconds,
    }
    _print(groups, failed, seconds)
    for d in result["residual_vs_plain"]:
        print(f"[{NAME}] residual − plain ({d['dataset']}/{d['method']}): " + ", ".join(
            f"{axis} {_fmt(d[f'{axis}_residual_minus_plain'])}" for axis in ("t", "n", "p")))
    return publish(out_dir, NAME, result, _figure(groups, runs) if runs else None)


def _gap(groups, axis):
    d = [abs(g[axis]["measured"] - g[axis]["predicted"]) for g in groups
         if None not in (g[axis]["measured"], g[axis]["predicted"])]
    return f"{axis}: {sci(float(np.median(d)))} ({len(d)})" if d else f"{axis}: –"


def _figure(groups, runs):
    from matplotlib.colors import LogNorm

    fig, ax = new_figure([["t", "n", "p"], ["h0", "h1", "h2"]], panel=(5.6, 4.2))
    for i, g in enumerate(groups):
        color, name = f"C{i % 10}", "/".join(g[k] for k in _GROUP)
        mine = [(r, rec) for r, rec in runs if all(r[k] == g[k] for k in _GROUP)]
        row, rec = max(mine, key=lambda x: (x[0]["n_train"], -x[0]["seed"], x[0]["width"]))
        ts, loss = rec.outputs["ts"], rec.outputs["train_loss"]
        ax["t"].loglog(ts[ts > 0], loss[ts > 0], color=color, lw=1,
                       label=f"{name} (n={row['n_train']}, p={row['width']}): "
                             f"{_fmt(row['t_exponent'])}")
        if row["t_window"] is not None:
            keep = (ts >= row["t_window"][0]) & (ts <= row["t_window"][1])
            fit = _fit(ts[keep], loss[keep])
            if fit is not None:
                draw_power_law(ax["t"], fit, ts[keep], color="k")
        for axis in ("n", "p"):
            a, (size, fixed) = g[axis], _SIZE[axis]
            if a["measured"] is None:
                continue
            pts = [r for r, _ in mine if r[fixed] == a[f"fixed_{fixed}"]]
            ax[axis].loglog([r[size] for r in pts], [r["final_test_loss"] for r in pts], "o",
                            ms=4, color=color, label=f"{name}: {_fmt(a['measured'])} "
                                                     f"(pred. {_fmt(a['predicted'])})")
            if a["fit"] is not None:
                draw_power_law(ax[axis], a["fit"], a["sizes"], color=color)
    for key, xlabel, title in (("t", "$t$", "train loss, largest n per group: plateau fit"),
                               ("n", "data size $n$", "final test loss vs n at fixed p"),
                               ("p", "width $p$", "final test loss vs p at fixed n")):
        ax[key].set(xlabel=xlabel, title=title)
        if ax[key].has_data():
            ax[key].legend(fontsize=7 if len(groups) > 3 else 9, loc="lower left")
    ax["t"].set_ylabel("loss")
    shown = {}
    for r, rec in sorted(runs, key=lambda x: (x[0]["dataset"] != "teacher", x[0]["method"],
                                              -x[0]["n_train"], x[0]["seed"])):
        if "shell_energy" in rec.outputs and len(shown) < 3:
            shown.setdefault(r["architecture"], (r, rec))
    for j, (r, rec) in enumerate(shown.values()):
        out, axh = rec.outputs, ax[f"h{j}"]
        ts, energy = out["ts"], out["shell_energy"]
        with np.errstate(divide="ignore", invalid="ignore"):
            frac = energy / np.where(energy[:1] > 0, energy[:1], np.nan)
        mesh = axh.pcolormesh(ts[ts > 0], np.arange(energy.shape[1]), frac[ts > 0].T,
                              shading="nearest", norm=LogNorm(1e-4, 1.0), cmap="viridis")
        axh.plot(ts[ts > 0], out["frontier_shell"][ts > 0], "w-", lw=2, label="frontier")
        axh.set(xscale="log", xlabel="$t$", ylabel="shell $s$ (large λ at top)",
                title=f"{'/'.join(r[k] for k in _GROUP)}, n={r['n_train']}, p={r['width']}")
        axh.invert_yaxis()
        axh.legend(loc="lower left")
        fig.colorbar(mesh, ax=axh, label="$E_s(t)/E_s(0)$")
    for j in range(len(shown), 3):
        ax[f"h{j}"].set_axis_off()
    claim_title(fig, "Real networks against the shell picture: loss exponents in t, n, p "
                     "vs σ = (β−1)/α and its resolution exponents, from the initial spectrum",
                f"median |measured − formula| (groups): {_gap(groups, 't')}, {_gap(groups, 'n')}"
                f", {_gap(groups, 'p')}; heat maps: shell energy left, white: the frontier")
    return fig
