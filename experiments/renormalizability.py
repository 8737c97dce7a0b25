"""Renormalizability: fit the transport closure at shell ratio 2, predict ratio 4 (and back).

docs/theory.md §2.5: "renormalizable" means a closure fitted at one shell ratio predicts the fluxes at
another without refitting. Two systems:

1. The planted `TransportChain` (drift v0 = 1, a = 0.5, b = 0.25 on λ_k = k^{-1}, ε_k = k^{-1.5}):
   planted-parameter recovery at ratios 2 and 4, and the 2 → 4 / 4 → 2 flux and energy
   prediction errors, for each face reconstruction scheme (upwind / central / geometric).
   Fitted points: interior boundaries whose shells hold ≥ 3 modes and still ≥ 50% of their
   initial energy (`retained_mask`).
2. Real networks (MLP and residual MLP, small output scale α: feature learning) trained by
   exact gradient flow: Kato modes on the recorded operator, shell budgets at ratios 2 and 4
   with the same λ_ref, closure fit at 2 → prediction at 4, and the log-shift spread.
"""

from __future__ import annotations

import dataclasses
import pathlib
import time
import traceback

import numpy as np

from ._common import enable_float64, write_result

NAME = "renormalizability"
PLANTED = {"v0": 1.0, "space_exponent": 0.5, "time_exponent": 0.25}


@dataclasses.dataclass(frozen=True)
class Config:
    preset: str = "quick"
    num_modes: int = 1024
    alpha: float = 1.0
    beta: float = 1.5
    lam_ref: float = 1.1  # no eigenvalue 1/k on a shell edge at ratio 2 or 4
    t_window: tuple[float, float] = (0.3, 10.0)
    num_times: int = 16
    schemes: tuple[str, ...] = ("upwind", "central", "geometric")
    num_bootstrap: int = 100
    # Networks.
    networks: tuple[str, ...] = ("MLP", "ResidualMLP")
    n_train: int = 48
    dim: int = 4
    width: int = 64
    depth: int = 2
    output_scale: float = 0.5
    t_max: float = 30.0
    net_times: int = 24
    seed: int = 0

    @classmethod
    def quick(cls) -> Config:
        return cls()

    @classmethod
    def full(cls) -> Config:
        return cls(preset="full", num_modes=4096, num_times=24, n_train=64, width=128,
                   net_times=40, num_bootstrap=200)


def _relative_errors(fit):
    return {k: abs(fit.params[k] / v - 1.0) for k, v in PLANTED.items()}


def _family(config):
    import jax.numpy as jnp

    import spectral_jax as sj
    from spectral_jax.renorm.closure_fit import (
        fit_closure,
        log_shift_invariance,
        renormalizability,
        retained_mask,
    )
    from spectral_jax.renorm.planted import power_law_transport, solve_chain

    n = config.num_modes
    c0 = jnp.asarray(np.arange(1, n + 1, dtype=np.float64) ** (-config.beta / 2))
    ts = np.geomspace(*config.t_window, config.num_times)
    chain = power_law_transport(n, alpha=config.alpha, **PLANTED)
    run_ = solve_chain(chain, c0, jnp.asarray(np.concatenate([[0.0], ts])))
    data = {}
    for ratio in (2.0, 4.0):
        count = int(np.floor(np.log(config.lam_ref * n**config.alpha) / np.log(ratio)))
        shells = sj.LogShells(config.lam_ref, ratio, count)
        budget = run_.shell_budget(shells)
        energy = np.asarray(budget.energy)
        modes = np.bincount(np.asarray(shells.assign(chain.eigenvalues)), minlength=count + 2)
        mask = retained_mask(energy[1:], reference=energy[0])
        mask &= ((modes[:-1] >= 3) & (modes[1:] >= 3))[None, :]
        data[ratio] = {
            "shells": shells, "energy": energy[1:], "flux": np.asarray(budget.flux)[1:],
            "transfer": np.asarray(budget.transfer)[1:], "mask": mask,
        }
    out = {"schemes": {}}
    plots = {}
    for scheme in config.schemes:
        entry = {}
        for src, dst in ((2.0, 4.0), (4.0, 2.0)):
            s, d = data[src], data[dst]
            fit = fit_closure(ts, s["energy"], s["flux"], s["shells"], scheme=scheme,
                              mask=s["mask"], num_bootstrap=config.num_bootstrap)
            report = renormalizability(fit, ts, d["energy"], d["flux"], d["shells"],
                                       mask=d["mask"])
            entry[f"fit_at_{src:g}"] = fit.as_dict()
            entry[f"recovery_error_at_{src:g}"] = _relative_errors(fit)
            entry[f"predict_{src:g}_to_{dst:g}"] = report.as_dict()
            if src == 2.0:
                from spectral_jax.renorm.closure_fit import predict_flux

                plots[scheme] = (predict_flux(fit, ts, d["energy"], d["shells"])[d["mask"]],
                                 d["flux"][d["mask"]])
        out["schemes"][scheme] = entry
    spread = log_shift_invariance(ts, data[2.0]["transfer"], data[2.0]["energy"],
                                  data[2.0]["shells"])
    out["log_shift_spread"] = spread.mean_spread
    # Covariant variant of the family (b = a - 1): the coupling should depend on d only.
    cov = power_law_transport(n, alpha=config.alpha, v0=1.0, space_exponent=0.5,
                              time_exponent=-0.5)
    run_c = solve_chain(cov, c0, jnp.asarray(np.concatenate([[1e-6], ts])))
    bud_c = run_c.shell_budget(data[2.0]["shells"])
    spread_c = log_shift_invariance(ts, np.asarray(bud_c.transfer)[1:],
                                    np.asarray(bud_c.energy)[1:], data[2.0]["shells"])
    out["log_shift_spread_covariant_variant"] = spread_c.mean_spread
    return out, plots, spread


def _network(name, config):
    import jax
    import jax.numpy as jnp
    from flax import nnx

    import spectral_jax as sj
    from spectral_jax import models
    from spectral_jax.renorm.closure_fit import fit_closure, log_shift_invariance, renormalizability

    data = sj.power_law_teacher(jax.random.key(config.seed), config.n_train, 8, config.dim,
                                dtype=jnp.float64)
    cls = getattr(models, name)
    model = cls(config.dim, config.width, config.depth, rngs=nnx.Rngs(config.seed),
                param_dtype=jnp.float64)
    apply_fn, params = sj.from_nnx(model)
    ts = sj.log_times(config.t_max, config.net_times, t_min=config.t_max * 1e-3)
    record = sj.gradient_flow(apply_fn, params, data.x_train, data.y_train, ts,
                              alpha=config.output_scale)
    lam0 = np.asarray(record.eigenvalues[0])
    lam_ref = 1.5 * float(np.asarray(record.eigenvalues).max())
    # Coarse-graining needs several modes per shell: interior shells reach down to the
    # eigenvalue of rank n/2; the rest is the tail shell.
    floor = lam0[lam0.shape[0] // 2]
    kato = sj.solve_kato(record.operator(), record.residuals[0], record.ts, rtol=1e-10,
                         atol=1e-12)
    t = np.asarray(record.ts)
    keep = t > 0
    out, plots, budgets = {"kernel_change": None}, {}, {}
    m0, m1 = np.asarray(record.kernels[0]), np.asarray(record.kernels[-1])
    out["kernel_change"] = float(np.linalg.norm(m1 - m0) / np.linalg.norm(m0))
    out["kato_residual_error"] = float(
        np.max(np.linalg.norm(np.asarray(kato.residuals - record.residuals), axis=1)
               / np.linalg.norm(np.asarray(record.residuals), axis=1)))
    for ratio in (2.0, 4.0):
        count = max(2, int(np.floor(np.log(lam_ref / floor) / np.log(ratio))))
        shells = sj.LogShells(lam_ref, ratio, count)
        b = sj.shell_budget(shells, kato.eigenvalues, kato.coefficients, kato.generator)
        budgets[ratio] = (shells, np.asarray(b.energy)[keep], np.asarray(b.flux)[keep],
                          np.asarray(b.transfer)[keep])
    fits = {}
    for scheme in ("upwind", "geometric"):
        for kind in ("drift", "drift+diffusion"):
            shells2, e2, f2, _ = budgets[2.0]
            shells4, e4, f4, _ = budgets[4.0]
            fit = fit_closure(t[keep], e2, f2, shells2, kind=kind, scheme=scheme,
                              num_bootstrap=config.num_bootstrap)
            rep = renormalizability(fit, t[keep], e4, f4, shells4)
            fits[f"{kind}/{scheme}"] = {"fit_at_2": fit.as_dict(),
                                        "predict_2_to_4": rep.as_dict()}
            if kind == "drift+diffusion" and scheme == "upwind":
                from spectral_jax.renorm.closure_fit import default_mask, predict_flux

                mask = default_mask(e4, f4)
                plots["flux"] = (predict_flux(fit, t[keep], e4, shells4)[mask], f4[mask])
    out["fits"] = fits
    shells2, e2, _, tr2 = budgets[2.0]
    spread = log_shift_invariance(t[keep], tr2, e2, shells2)
    out["log_shift_spread"] = spread.mean_spread
    out["num_shells_ratio_2"] = shells2.num_shells
    return out, plots


def run(config: Config, out_dir: pathlib.Path) -> dict:
    enable_float64()
    start = time.time()
    family, family_plots, spread = _family(config)
    networks, net_plots = {}, {}
    for name in config.networks:
        try:
            networks[name], net_plots[name] = _network(name, config)
        except Exception:  # a failed network run is recorded, not dropped
            networks[name] = {"failed": True, "traceback": traceback.format_exc()}
    result = {
        "config": dataclasses.asdict(config),
        "planted": PLANTED,
        "family": family,
        "networks": networks,
        "seconds": time.time() - start,
    }
    write_result(out_dir, NAME, result)
    _figure(out_dir / f"{NAME}.png", family, family_plots, spread, net_plots)
    _print_summary(family, networks)
    return result


def _print_summary(family, networks):
    for scheme, entry in family["schemes"].items():
        fit = entry["fit_at_2"]
        print(
            f"[{NAME}] family/{scheme}: fitted v0={fit['v0']:.3f} a={fit['space_exponent']:.3f} "
            f"b={fit['time_exponent']:.3f} (planted {PLANTED}); 2->4 "
            f"{_errors(entry.get('predict_2_to_4', {}))}"
        )
    for name, net in networks.items():
        if net.get("failed"):
            print(f"[{NAME}] {name}: FAILED (traceback in the JSON)")
            continue
        for key, entry in net["fits"].items():
            print(
                f"[{NAME}] {name} {key}: explained variance "
                f"{entry['fit_at_2']['explained_variance']:.2f}; 2->4 "
                f"{_errors(entry['predict_2_to_4'])}"
            )


def _errors(report: dict) -> str:
    keys = [k for k in report if k.endswith("error")]
    return ", ".join(f"{k}={report[k]:.3g}" for k in keys if isinstance(report[k], float))


def _figure(path, family, family_plots, spread, net_plots):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(19, 4.4))
    ax = axes[0]
    schemes = list(family["schemes"])
    names = list(PLANTED)
    width = 0.8 / max(len(schemes), 1)
    for i, scheme in enumerate(schemes):
        fit = family["schemes"][scheme]["fit_at_2"]
        vals = [fit[k] / PLANTED[k] for k in names]
        errs = [fit[f"{k}_stderr"] / PLANTED[k] for k in names]
        ax.bar(np.arange(3) + i * width, vals, width, yerr=errs, label=scheme)
    ax.axhline(1.0, color="k", lw=1)
    ax.axhspan(0.9, 1.1, color="0.9", zorder=0)
    ax.set_xticks(np.arange(3) + 0.4 - width / 2, ["v0", "a", "b"])
    ax.set_ylabel("fitted / planted (ratio 2)")
    ax.legend(fontsize=8)
    ax.set_title("planted-parameter recovery")
    ax = axes[1]
    for scheme, (pred, meas) in family_plots.items():
        err = family["schemes"][scheme]["predict_2_to_4"]["flux_error"]
        ax.loglog(-meas, -pred, ".", ms=4, label=f"{scheme}: err {err:.3f}")
    lim = ax.get_xlim()
    ax.plot(lim, lim, "k:", lw=1)
    ax.set_xlabel("measured -Π at ratio 4 (chain)")
    ax.set_ylabel("predicted from the ratio-2 fit")
    ax.legend(fontsize=8)
    ax = axes[2]
    for name, plots in net_plots.items():
        if "flux" in plots:
            pred, meas = plots["flux"]
            ax.plot(meas, pred, ".", ms=4, label=name)
    if net_plots:
        lo = min(min(p["flux"][1].min(), p["flux"][0].min()) for p in net_plots.values()
                 if "flux" in p)
        hi = max(max(p["flux"][1].max(), p["flux"][0].max()) for p in net_plots.values()
                 if "flux" in p)
        ax.plot([lo, hi], [lo, hi], "k:", lw=1)
    ax.set_xlabel("measured Π at ratio 4 (network)")
    ax.set_ylabel("predicted (drift+diffusion, upwind, fit at 2)")
    ax.legend(fontsize=8)
    ax = axes[3]
    for i, tau in enumerate(spread.taus):
        if np.isfinite(spread.spread[i]):
            ax.plot(spread.shells, spread.couplings[i], "o-", ms=3, label=f"τ={tau:.2g}")
    ax.set_xlabel("shell s")
    ax.set_ylabel("C_s(τ) = T_{s,s+1}/(λ_s √(E_s E_{s+1}))")
    ax.set_title(f"log-shift (chain, b=0.25): spread {spread.mean_spread:.2f}")
    ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
