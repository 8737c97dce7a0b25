"""The central claim end to end on real networks: measured loss exponents against the shell
picture's prediction from the initial spectrum (docs/theory.md §2.5–2.6).

One configuration is (architecture, dataset, width p, data size n, seed, method): the tanh
`MLP` or `ResidualMLP` (NTK parameterisation) or a tiny CNN (`_tiny_cnn_class`), on the
power-law teacher or scikit-learn's bundled digits, trained by exact gradient flow
(`sj.gradient_flow`, float64) or Adam (`sj.train_optax`, t = learning rate × steps).
`compute` stores the loss curves, the initial spectrum of the recorded eNTK $M = K/n$ and the
target energy per eigenmode $\\varepsilon_k = (\\phi_k^\\top y)^2$; with `analyse_shells` the
Kato/shell analysis (`sj.analyze_training`: shell energies and frontier over time, Kato
residual error); with `analyse_closure` the drift closure fitted on the ratio-2 budget
(v0, a, b, explained variance), its flux prediction at ratio 4 and the log-shift spread, as
`renormalizability` does on network runs. `report` (`_network_scaling_report`) sets the
measured exponents in t, n and p beside σ = (β−1)/α fitted on the initial spectrum, the
resolution exponents and the fitted shell model, as measured, agreeing or not.
A sweep (`Execution.EACH`: adaptive solvers and host-side analysis, one run per call); its
`batched` fields only group the runs that share a compiled flow (for local workers).
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import math
import pathlib

import numpy as np

from ..sweep import Execution, Record, Sweep, build_parameters

NAME = "network_scaling"
_DIGITS_POINTS, _DIGITS_SIDE = 1797, 8  # scikit-learn's digits: 1797 images of 8 × 8 pixels


class Architecture(enum.StrEnum):
    MLP = "mlp"
    RESIDUAL_MLP = "residual_mlp"
    CNN = "cnn"


class Dataset(enum.StrEnum):
    TEACHER = "teacher"  # sj.power_law_teacher: Gaussian inputs, linear power-law teacher
    DIGITS = "digits"  # sj.load_digits_data: even vs odd digit, ±1


class Method(enum.StrEnum):
    GRADIENT_FLOW = "gradient_flow"  # exact flow, diffrax
    ADAM = "adam"  # optax.adam, full batch


def _enum(cls, value, name):
    try:
        return cls(value)
    except ValueError:
        choices = [m.value for m in cls]
        raise ValueError(f"{name} must be one of {choices}, got {value!r}") from None


@dataclasses.dataclass(frozen=True)
class Parameters:
    architecture: Architecture = Architecture.MLP
    dataset: Dataset = Dataset.TEACHER
    width: int = 64  # p: hidden units (MLPs) or channels (CNN)
    n_train: int = 64  # n
    seed: int = 0  # data draw (teacher) or split (digits), and initialisation
    method: Method = Method.GRADIENT_FLOW
    n_test: int = 256
    depth: int = 2  # hidden layers / residual blocks / convolutions
    dim: int = 16  # teacher input dimension (a square for the CNN); digits have 64 pixels
    input_exponent: float = 1.0  # teacher covariance k^-ν
    target_exponent: float = 2.0  # teacher target energy k^-β per input mode
    t_max: float = 1e4  # gradient flow: last time (first saved time t_max / 1e5)
    num_times: int = 20  # saved times after t = 0 (Adam: about as many recorded steps)
    rtol: float = 1e-8  # of the gradient flow (Tsit5)
    learning_rate: float = 1e-2  # Adam
    num_steps: int = 2000  # Adam
    shell_ratio: float = 2.0
    analyse_shells: bool = True  # Kato modes, shell energies, frontier (cost grows fast in n)
    analyse_closure: bool = True  # closure fit at ratio 2, prediction at 4, log-shift spread
    closure_bootstrap: int = 0  # bootstrap replicates of the closure fit (0: none)

    def __post_init__(self):
        object.__setattr__(self, "architecture",
                           _enum(Architecture, self.architecture, "architecture"))
        object.__setattr__(self, "dataset", _enum(Dataset, self.dataset, "dataset"))
        object.__setattr__(self, "method", _enum(Method, self.method, "method"))
        for name in ("width", "depth", "dim", "n_test", "num_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name, low in (("n_train", 8), ("num_times", 8), ("seed", 0),
                          ("closure_bootstrap", 0)):  # 8: a spectrum, a plateau in t to fit
            if getattr(self, name) < low:
                raise ValueError(f"{name} must be >= {low}, got {getattr(self, name)}")
        for name in ("t_max", "rtol", "learning_rate", "input_exponent"):
            if not 0 < getattr(self, name) < math.inf:
                raise ValueError(f"{name} must be positive and finite, got "
                                 f"{getattr(self, name)}")
        if not self.target_exponent > 1:
            raise ValueError(f"target_exponent must be > 1 (finite target energy), got "
                             f"{self.target_exponent}")
        if not self.shell_ratio > 1:
            raise ValueError(f"shell_ratio must be > 1, got {self.shell_ratio}")
        if self.analyse_closure and not self.analyse_shells:
            raise ValueError("analyse_closure needs analyse_shells (the closure is fitted on "
                             "the shell budget)")
        if self.dataset is Dataset.DIGITS and self.n_train + self.n_test > _DIGITS_POINTS:
            raise ValueError(f"digits has {_DIGITS_POINTS} images: n_train + n_test = "
                             f"{self.n_train + self.n_test} is too many")
        if (self.architecture is Architecture.CNN and self.dataset is Dataset.TEACHER
                and math.isqrt(self.dim) ** 2 != self.dim):
            raise ValueError(f"the CNN reshapes the teacher's inputs to a square image: dim "
                             f"must be a perfect square, got {self.dim}")

    @property
    def side(self) -> int:
        """Side of the image the CNN sees (8 for digits, √dim for the teacher)."""
        return _DIGITS_SIDE if self.dataset is Dataset.DIGITS else math.isqrt(self.dim)

    @property
    def in_features(self) -> int:
        return _DIGITS_SIDE**2 if self.dataset is Dataset.DIGITS else self.dim


def _patches(h):
    """3×3 'SAME' patches (n, s, s, C) → (n, s, s, 9C), ordered (row, column, channel) as the
    rows of an `nnx.Conv` kernel (3, 3, C, C') reshaped to (9C, C')."""
    import jax.numpy as jnp

    side = h.shape[1]
    padded = jnp.pad(h, ((0, 0), (1, 1), (1, 1), (0, 0)))
    return jnp.concatenate([padded[:, i:i + side, j:j + side, :]
                            for i in range(3) for j in range(3)], axis=-1)


@functools.lru_cache(maxsize=1)
def _tiny_cnn_class():
    import jax
    import jax.numpy as jnp
    from flax import nnx

    class ConvNTK(nnx.Module):
        """3×3 'SAME' convolution, NTK scaling: `nnx.Conv` kernel and bias N(0, 1), output
        $W * a/\\sqrt{9 c_\\text{in}} + 0.1\\,b$ (as `DenseNTK`). Applied as patches × kernel
        matrix, equal to `self.conv(a)` (tested): on CPU in float64 XLA's convolution made the
        recorded eNTK and its derivative ~150× slower (2.2 s against 15 ms per time, n = 64)."""

        def __init__(self, c_in, c_out, *, rngs, dtype):
            self.conv = nnx.Conv(c_in, c_out, (3, 3), padding="SAME", use_bias=False,
                                 kernel_init=nnx.initializers.normal(1.0), dtype=dtype,
                                 param_dtype=dtype, rngs=rngs)
            self.bias = nnx.Param(jax.random.normal(rngs.params(), (c_out,), dtype))
            self.scale = 1.0 / math.sqrt(9 * c_in)

        def linear(self, a):
            """The bare convolution W * a, as patches × kernel matrix."""
            kernel = self.conv.kernel[...]
            return _patches(a) @ kernel.reshape(-1, kernel.shape[-1])

        def __call__(self, a):
            return self.scale * self.linear(a) + 0.1 * self.bias[...][None, None, None, :]

    class TinyCNN(nnx.Module):
        """`depth` tanh convolutions with `width` channels on the inputs reshaped to a
        side × side one-channel image, flattened, then a scalar linear readout. NTK-style
        scaling throughout (N(0, 1) parameters, 1/√fan-in in the forward pass, bias × 0.1),
        so the eNTK stays O(1) as the width grows, like the MLPs'."""

        def __init__(self, side, width, depth, *, rngs, dtype):
            channels = [1] + [width] * depth
            self.side = side
            self.convs = nnx.List([ConvNTK(a, b, rngs=rngs, dtype=dtype)
                                   for a, b in zip(channels[:-1], channels[1:])])
            self.readout = nnx.Param(jax.random.normal(rngs.params(), (side * side * width,),
                                                       dtype))
            self.readout_bias = nnx.Param(jax.random.normal(rngs.params(), (), dtype))
            self.readout_scale = 1.0 / math.sqrt(side * side * width)

        def __call__(self, x):
            h = x.reshape(x.shape[0], self.side, self.side, 1)
            for conv in self.convs:
                h = jnp.tanh(conv(h))
            h = h.reshape(h.shape[0], -1)
            return self.readout_scale * (h @ self.readout[...]) + 0.1 * self.readout_bias[...]

    return TinyCNN


def _model(p: Parameters, seed: int):
    import jax.numpy as jnp
    from flax import nnx

    from ..networks import MLP, ResidualMLP

    rngs, dtype = nnx.Rngs(seed), jnp.float64
    if p.architecture is Architecture.MLP:
        return MLP(p.in_features, p.width, p.depth, rngs=rngs, param_dtype=dtype)
    if p.architecture is Architecture.RESIDUAL_MLP:
        return ResidualMLP(p.in_features, p.width, p.depth, rngs=rngs, param_dtype=dtype)
    return _tiny_cnn_class()(p.side, p.width, p.depth, rngs=rngs, dtype=dtype)


@functools.lru_cache(maxsize=16)
def _apply_fn(architecture, dataset, dim, width, depth):
    """One `apply_fn` per network shape: the compiled flow and recording (keyed on it) are
    reused by every seed and data size of that shape."""
    import spectral_jax as sj

    p = Parameters(architecture=architecture, dataset=dataset, dim=dim, width=width, depth=depth)
    return sj.from_nnx(_model(p, 0))[0]


def _data(p: Parameters):
    import jax
    import jax.numpy as jnp

    import spectral_jax as sj

    if p.dataset is Dataset.TEACHER:
        return sj.power_law_teacher(jax.random.key(p.seed), p.n_train, p.n_test, p.dim,
                                    input_exponent=p.input_exponent,
                                    target_exponent=p.target_exponent, dtype=jnp.float64)
    try:
        import sklearn  # noqa: F401
    except ImportError:
        raise ImportError("network_scaling: dataset 'digits' needs scikit-learn (its digits "
                          "ship with it, nothing is downloaded): pip install scikit-learn, "
                          "or use dataset = 'teacher'") from None
    return sj.load_digits_data(p.n_train, p.n_test, seed=p.seed, dtype=jnp.float64)


def _train(p: Parameters, data):
    import diffrax
    import optax

    import spectral_jax as sj

    dim = p.dim if p.dataset is Dataset.TEACHER else 16  # digits: dim unused
    apply_fn = _apply_fn(p.architecture, p.dataset, dim, p.width, p.depth)
    params = sj.from_nnx(_model(p, p.seed))[1]
    test = dict(x_test=data.x_test, y_test=data.y_test)
    if p.method is Method.ADAM:
        return sj.train_optax(apply_fn, params, data.x_train, data.y_train,
                              optax.adam(p.learning_rate), learning_rate=p.learning_rate,
                              num_steps=p.num_steps, num_records=p.num_times + 1, **test)
    ts = sj.log_times(p.t_max, p.num_times, t_min=p.t_max * 1e-5)
    # Tsit5: compiles faster than the default Dopri8, and order 5 is ample at rtol 1e-8.
    return sj.gradient_flow(apply_fn, params, data.x_train, data.y_train, ts, rtol=p.rtol,
                            atol=p.rtol * 1e-2, solver=diffrax.Tsit5(), **test)


def _closure(p: Parameters, record, kato) -> dict:
    """As `renormalizability` on network runs: shells from 1.5 λ_max down to the eigenvalue
    of rank n/2 at ratios 2 and 4 (same λ_ref), drift closure (exponential faces) fitted at 2,
    its flux prediction at 4, and the log-shift spread at 2. NaN where a step fails."""
    import spectral_jax as sj
    from spectral_jax import renorm

    nan = float("nan")
    out = dict(closure_v0=nan, closure_a=nan, closure_b=nan, closure_explained_variance=nan,
               flux_error_2_to_4=nan, log_shift_spread=nan)
    lam0 = np.asarray(record.eigenvalues[0])
    lam_ref = 1.5 * float(np.asarray(record.eigenvalues).max())
    floor = float(lam0[lam0.shape[0] // 2])
    t = np.asarray(record.ts)
    keep = t > 0
    budgets = {}
    for ratio in (2.0, 4.0):
        count = max(2, int(np.floor(np.log(lam_ref / floor) / np.log(ratio))))
        shells = sj.LogShells(lam_ref, ratio, count)
        b = sj.shell_budget(shells, kato.eigenvalues, kato.coefficients, kato.generator)
        budgets[ratio] = (shells, *(np.asarray(x)[keep] for x in (b.energy, b.flux, b.transfer)))
    (s2, e2, f2, tr2), (s4, e4, f4, _) = budgets[2.0], budgets[4.0]
    try:
        fit = renorm.fit_closure(t[keep], e2, f2, s2, kind=renorm.ClosureKind.DRIFT,
                                 num_bootstrap=p.closure_bootstrap)
        out.update(closure_v0=fit.v0, closure_a=fit.space_exponent,
                   closure_b=fit.time_exponent, closure_explained_variance=fit.explained_variance)
        out["flux_error_2_to_4"] = renorm.renormalizability(fit, t[keep], e4, f4, s4,
                                                            integrate=False).flux_error
    except ValueError as exc:  # too few points to fit or compare: recorded as NaN
        print(f"[{NAME}] closure fit skipped: {exc}")
    out["log_shift_spread"] = renorm.log_shift_invariance(t[keep], tr2, e2, s2).mean_spread
    return {k: np.asarray(v, dtype=np.float64) for k, v in out.items()}


def compute(params) -> dict:
    """Train one configuration and measure it (see the module docstring for the outputs)."""
    import jax.numpy as jnp

    import spectral_jax as sj

    p = build_parameters(Parameters, params)
    data = _data(p)
    record = _train(p, data)
    lam, phi = (np.asarray(v) for v in jnp.linalg.eigh(record.kernels[0]))  # on the device
    lam, phi, m0 = lam[::-1], phi[:, ::-1], np.asarray(record.kernels[0])
    out = {
        "ts": np.asarray(record.ts),
        "train_loss": np.asarray(record.loss),
        "test_loss": np.asarray(record.test_loss),
        "eigenvalues0": lam,
        "target_energy0": (phi.T @ np.asarray(data.y_train)) ** 2,
        "kernel_change": np.linalg.norm(np.asarray(record.kernels[-1]) - m0) / np.linalg.norm(m0),
    }
    if p.analyse_shells:
        an = sj.analyze_training(record, ratio=p.shell_ratio, rtol=1e-6, atol=1e-9)
        out.update(
            shell_energy=np.asarray(an.budget.energy),
            shell_centers=np.asarray(an.shells.centers),
            frontier_shell=np.asarray(an.frontier.shell),
            frontier_eigenvalue=np.asarray(an.frontier.eigenvalue),
            kato_residual_error_max=np.max(np.asarray(an.residual_error)),
        )
        if p.analyse_closure:
            out.update(_closure(p, record, an.kato))
    return out


SWEEP = Sweep(name=NAME, parameters=Parameters, compute=compute, execution=Execution.EACH,
              batched=("seed", "analyse_shells", "analyse_closure", "closure_bootstrap"),
              description="real networks (MLP, residual MLP, CNN): loss exponents in t, n, p "
                          "vs the shell picture's prediction from the initial spectrum")


def report(records: list[Record], out_dir: pathlib.Path) -> dict:
    """Exponent table, predictions, closure diagnostics and figure (`_network_scaling_report`)."""
    from ._network_scaling_report import build_report

    return build_report(records, pathlib.Path(out_dir))
