"""Infinite-width NTK (`spectral_jax.networks.infinite_width_ntk`): finite-width convergence,
cost, and agreement with neural-tangents.

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_infinite_width.py \\
        [--seeds 8] [--widths 256 512 1024 2048 4096] [--nt-reference /tmp/nt_infinite_width.npz]

Writes benchmarks/infinite_width.md and benchmarks/infinite_width_convergence.png.

- Convergence: the eNTK K = J Jᵀ (`empirical_ntk`, STRUCTURED) of `spectral_jax.MLP` (2 hidden
  layers of `width` units, i.e. depth 3 Dense layers, σ_w = 1, σ_b = 0.1, float64) at
  initialisation, against Θ of `infinite_width_ntk(depth=3)`, on 16 standard-normal inputs of
  dimension 8; relative Frobenius error ‖K − Θ‖_F/‖Θ‖_F averaged over `--seeds`
  initialisations, for ReLU and erf. A least-squares line in log-log gives the rate.
- Cost: compiled wall time of `infinite_width_ntk` (median of 5 calls, after a warm-up).
- neural-tangents: with `--nt-reference PATH` (the .npz of
  benchmarks/nt_reference_infinite_width.py, run under a separate venv), the largest
  relative difference per activation and depth over its (W_std, b_std) choices, NNGP and NTK,
  x2 = None and x2 given.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import statistics
import time

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from flax import nnx  # noqa: E402

import spectral_jax  # noqa: E402
from spectral_jax.networks import infinite_width_nngp, infinite_width_ntk  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
W_STD, B_STD, DEPTH = 1.0, 0.1, 3
ACTIVATIONS = {"relu": jax.nn.relu, "erf": jax.scipy.special.erf}


def convergence(widths, seeds):
    x = jnp.asarray(np.random.default_rng(0).standard_normal((16, 8)))
    rows = {}
    for name, fn in ACTIVATIONS.items():
        limit = infinite_width_ntk(x, depth=DEPTH, activation=name, w_std=W_STD, b_std=B_STD)
        errors = np.zeros((len(widths), seeds))
        for i, width in enumerate(widths):
            for seed in range(seeds):
                model = spectral_jax.MLP(8, width, DEPTH - 1, activation=fn, weight_std=W_STD,
                                         bias_std=B_STD, rngs=nnx.Rngs(seed),
                                         param_dtype=jnp.float64)
                apply_fn, params = spectral_jax.from_nnx(model)
                k = spectral_jax.empirical_ntk(
                    apply_fn, params, x, implementation=spectral_jax.NTKImplementation.STRUCTURED
                )
                errors[i, seed] = float(jnp.linalg.norm(k - limit) / jnp.linalg.norm(limit))
            print(f"  {name} width {width}: mean error {errors[i].mean():.4f}", flush=True)
        slope, intercept = np.polyfit(np.log(widths), np.log(errors.mean(axis=1)), 1)
        rows[name] = dict(errors=errors, slope=slope, intercept=intercept)
    return rows


def figure(widths, rows, path):
    fig, ax = plt.subplots(figsize=(5.5, 4.0))
    w = np.asarray(widths, dtype=float)
    for (name, row), color in zip(rows.items(), ("C0", "C1"), strict=True):
        e = row["errors"]
        sem = e.std(axis=1, ddof=1) / np.sqrt(e.shape[1])
        ax.errorbar(w, e.mean(axis=1), yerr=sem, fmt="o", color=color, capsize=3,
                    label=f"{name}: mean over {e.shape[1]} seeds")
        ax.plot(w, np.exp(row["intercept"]) * w ** row["slope"], "-", color=color,
                label=f"{name} fit: slope {row['slope']:.2f}")
    ax.plot(w, 0.9 * rows["relu"]["errors"].mean(axis=1)[0] * (w / w[0]) ** -0.5, ":",
            color="gray", label="width$^{-1/2}$")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("hidden width")
    ax.set_ylabel(r"$\|K_\mathrm{emp} - \Theta\|_F / \|\Theta\|_F$")
    ax.set_title(f"eNTK at init vs infinite-width NTK (depth {DEPTH}, 16 inputs)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def timings():
    out = []
    cases = [("relu", 1000, 64), ("erf", 1000, 64), ("tanh (quadrature)", 100, 64),
             ("tanh (quadrature)", 50, 128)]
    for name, n, points in cases:
        x = jnp.asarray(np.random.default_rng(1).standard_normal((n, 8)))
        act = jnp.tanh if name.startswith("tanh") else name
        run = lambda: infinite_width_ntk(x, depth=DEPTH, activation=act,  # noqa: E731
                                         quadrature_points=points).block_until_ready()
        start = time.perf_counter()
        run()
        first = time.perf_counter() - start
        times = []
        for _ in range(5):
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
        out.append((name, n, points if name.startswith("tanh") else None, first,
                    statistics.median(times)))
    return out


def nt_comparison(path):
    z = np.load(path)
    x1, x2 = jnp.asarray(z["x1"]), jnp.asarray(z["x2"])
    table = {}

    def record(key, slot, value):
        cells = table.setdefault(key, {})
        cells[slot] = max(cells.get(slot, 0.0), float(value))

    for meta in json.loads(str(z["meta"])):
        act = jnp.tanh if meta["activation"] == "tanh" else meta["activation"]
        opts = dict(depth=meta["depth"], activation=act, w_std=meta["w_std"],
                    b_std=meta["b_std"])
        key = (meta["activation"], meta["depth"])
        for tag, second in (("same", None), ("cross", x2)):
            for kind, fn in (("nngp", infinite_width_nngp), ("ntk", infinite_width_ntk)):
                ref = z[f"{meta['key']}_{tag}_{kind}"]
                diff = np.abs(np.asarray(fn(x1, second, **opts)) - ref)
                scale = np.abs(ref).max()
                if tag == "cross":
                    record(key, f"{kind} cross", diff.max() / scale)
                    if meta["activation"] == "tanh" and kind == "ntk":
                        fine = np.asarray(fn(x1, second, quadrature_points=256, **opts))
                        record(key, "ntk cross, 256 points", np.abs(fine - ref).max() / scale)
                    continue
                off = diff - np.diag(np.diag(diff))
                record(key, f"{kind} same (off-diagonal)", off.max() / scale)
                record(key, f"{kind} same (diagonal)",
                       np.max(np.diag(diff) / np.abs(np.diag(ref))))
    return table, json.loads(str(z["versions"]))


def report(args, widths, rows, times, nt, seconds):
    lines = [
        "# Infinite-width NTK: finite-width convergence, cost, neural-tangents",
        "",
        f"`OPENBLAS_NUM_THREADS=1 python benchmarks/bench_infinite_width.py --seeds {args.seeds}"
        + (f" --nt-reference {args.nt_reference}" if args.nt_reference else "") + "`: "
        f"{jax.devices()[0].platform}, {os.cpu_count()} CPU cores, CPython "
        f"{platform.python_version()}, jax {jax.__version__}, float64, "
        f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}, "
        f"{seconds:.0f} s in all, 1-min load average at the end {os.getloadavg()[0]:.1f}.",
        "",
        "Convention (neural-tangents' `stax`, NTK parameterisation): `depth` Dense layers "
        "h ↦ σ_w h W/√fan_in + σ_b b with standard-normal W, b, the activation between "
        "consecutive layers, scalar output; Σ₁ = Θ₁ = σ_w² x·x'/d + σ_b², "
        "Σ_{l+1} = σ_w² E[φ(u)φ(v)] + σ_b², Θ_{l+1} = Σ_{l+1} + σ_w² E[φ'(u)φ'(v)] Θ_l.",
        "",
        "## Convergence of the eNTK at initialisation",
        "",
        f"`spectral_jax.MLP(8, width, {DEPTH - 1}, weight_std={W_STD}, bias_std={B_STD})` "
        f"({DEPTH} Dense layers), eNTK by `empirical_ntk(..., STRUCTURED)`, 16 standard-normal "
        f"inputs of dimension 8 (`default_rng(0)`), seeds 0–{args.seeds - 1} (`nnx.Rngs(seed)`); "
        "error = ‖K − Θ‖_F/‖Θ‖_F, mean ± standard error over the seeds.",
        "",
        "| width | " + " | ".join(f"{name} error" for name in rows) + " |",
        "|---|" + "---|" * len(rows),
    ]
    for i, width in enumerate(widths):
        cells = []
        for row in rows.values():
            e = row["errors"][i]
            cells.append(f"{e.mean():.4f} ± {e.std(ddof=1) / np.sqrt(e.size):.4f}")
        lines.append(f"| {width} | " + " | ".join(cells) + " |")
    lines += [
        "| **log-log slope** | " + " | ".join(f"**{row['slope']:.3f}**" for row in rows.values())
        + " |",
        "",
        "The fluctuations of the eNTK around Θ are O(width^-1/2) (Jacot et al. 2018; "
        "Hanin & Nica 2020), so the slope should be about −0.5. The per-seed errors scatter by "
        "±30% at every width, so a slope from a few seeds is itself uncertain by about ±0.1 "
        "(the test, tests/test_infinite_width.py, fits 4 seeds of its own plain-JAX network "
        "and accepts [−0.7, −0.3]).",
        "",
        "![convergence](infinite_width_convergence.png)",
        "",
        "## Cost",
        "",
        f"`infinite_width_ntk(x, depth={DEPTH})` on n standard-normal inputs of dimension 8, "
        "x2 = None; first call (compilation included) and median of 5 compiled calls.",
        "",
        "| activation | n | quadrature points | first call (s) | compiled (ms) |",
        "|---|---|---|---|---|",
    ]
    for name, n, points, first, median in times:
        lines.append(f"| {name} | {n} | {points or '—'} | {first:.2f} | {1e3 * median:.1f} |")
    lines += [
        "",
        "The closed forms cost a few elementwise passes over the n × n kernel per layer; the "
        "quadrature path evaluates φ and φ' on Q² nodes per kernel entry (row by row, "
        "`lax.map`, so memory is n·Q²).",
        "",
    ]
    lines += nt_section(nt)
    (HERE / "infinite_width.md").write_text("\n".join(lines) + "\n")


def nt_section(nt):
    lines = ["## Agreement with neural-tangents", ""]
    if nt is None:
        return lines + ["Not run (pass `--nt-reference PATH`).", ""]
    table, versions = nt
    lines += [
        "```bash",
        "python3.11 -m venv /tmp/nt-venv",
        '/tmp/nt-venv/bin/pip install "jax[cpu]==0.4.25" "jaxlib==0.4.25" '
        'neural-tangents==0.6.5 "numpy<2" "scipy<1.13"',
        "/tmp/nt-venv/bin/python benchmarks/nt_reference_infinite_width.py "
        "--out /tmp/nt_infinite_width.npz",
        "OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_infinite_width.py "
        "--nt-reference /tmp/nt_infinite_width.npz",
        "```",
        "",
        f"Reference: neural-tangents {versions['neural_tangents']}, jax {versions['jax']}, "
        f"x64 {versions['x64']}: `stax.serial(Dense(512, W_std, b_std), φ, …, Dense(1, W_std, "
        "b_std))` (default `parameterization='ntk'`), `kernel_fn(x1, x2, ('nngp', 'ntk'))`, "
        "φ = `stax.Relu()`, `stax.Erf()`, or `stax.ElementwiseNumerical(jnp.tanh, "
        f"deg={versions['tanh_deg']})` against our Gauss–Hermite path at its default 64 points. "
        "(W_std, b_std) ∈ {(1, 0), (1.5, 0.1), (√2, 0.5)} for relu and erf, (1.5, 0.1) for "
        "tanh; x1 (12, 6) and x2 (7, 6) standard normal from `np.random.default_rng(0)`. Each "
        "cell: max |ours − NT| / max |NT| over the matrix and the (W_std, b_std) choices; the "
        "diagonal of the x2 = None kernel is given as its largest entrywise relative difference.",
        "",
    ]
    slots = ["nngp cross", "ntk cross", "nngp same (off-diagonal)", "ntk same (off-diagonal)",
             "nngp same (diagonal)", "ntk same (diagonal)"]
    lines += ["| activation | depth | " + " | ".join(slots) + " |",
              "|---|---|" + "---|" * len(slots)]
    for (act, depth), cells in table.items():
        lines.append(f"| {act} | {depth} | " + " | ".join(f"{cells[s]:.1e}" for s in slots)
                     + " |")
    relu_diag = max(c["ntk same (diagonal)"] for (act, _), c in table.items() if act == "relu")
    closed = max(v for (act, _), c in table.items() if act != "tanh" for s, v in c.items()
                 if (act, s) != ("relu", "ntk same (diagonal)"))
    tanh = max((v for (act, _), c in table.items() if act == "tanh" for s, v in c.items()
                if "256" not in s), default=float("nan"))
    tanh256 = max((c.get("ntk cross, 256 points", 0.0) for (act, _), c in table.items()
                   if act == "tanh"), default=float("nan"))
    lines += [
        "",
        f"**Result.** The conventions are identical: ReLU and erf agree with neural-tangents "
        f"to {closed:.0e} (round-off) everywhere except the diagonal of ReLU's NTK at "
        f"x2 = None, where they differ by up to {relu_diag:.0e}. That is neural-tangents' "
        "rounding, not a difference of convention: at x = x' the slope term (π − θ)/2π has an "
        "infinite derivative in cos θ (θ ≈ √(2(1 − cos θ))), so NT's cos θ = Σ(x, x)/√(Σ(x, x) "
        "Σ(x, x)), with numerator and denominator rounded separately, comes out 1 − O(1e-16) "
        "and θ ≈ 1e-8; `infinite_width_ntk` reads the diagonal off the same matrix "
        "(√(s·s) = s exactly in IEEE arithmetic), so cos θ = 1 and θ = 0 there. "
        f"tanh (both sides numerical): {tanh:.0e}, which is the error of our 64-point rule on "
        "these inputs (Σ₁(x, x) up to ≈ 5); at 256 points our NTK agrees with NT's deg-200 "
        f"rule to {tanh256:.0e}.",
        "",
        "Convention check, term by term: NT's Dense with `parameterization='ntk'` computes "
        "W_std/√fan_in · x W + b_std · b in the forward pass; its kernel rule is "
        "nngp ← W_std² nngp + b_std² and ntk ← nngp_new + W_std² ntk (the bias contributing "
        "b_std² to both), starting from nngp = x·x'/d and ntk = 0 — the recursion above with "
        "Θ₁ = Σ₁. Relu/Erf map nngp ↦ E[φ(u)φ(v)] and ntk ↦ ntk · E[φ'(u)φ'(v)]. No rescaling "
        "between the two is needed.",
        "",
    ]
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--widths", type=int, nargs="+", default=[256, 512, 1024, 2048, 4096])
    parser.add_argument("--nt-reference", default=None)
    args = parser.parse_args()
    start = time.perf_counter()
    print("convergence", flush=True)
    rows = convergence(args.widths, args.seeds)
    for name, row in rows.items():
        print(f"  {name}: slope {row['slope']:.3f}")
    figure(args.widths, rows, HERE / "infinite_width_convergence.png")
    print("timings", flush=True)
    times = timings()
    nt = None
    if args.nt_reference:
        print("neural-tangents comparison", flush=True)
        nt = nt_comparison(args.nt_reference)
        for (act, depth), cells in nt[0].items():
            print(f"  {act} depth {depth}: " + ", ".join(f"{k} {v:.1e}" for k, v in cells.items()))
    report(args, args.widths, rows, times, nt, time.perf_counter() - start)
    print(f"wrote {HERE / 'infinite_width.md'}")


if __name__ == "__main__":
    main()
