"""The experiments: one module per scientific claim, run by `spectral-jax run NAME`.

Two kinds of module:

- **Sweeps** (`lazy_scaling`, `resolution_limits`, `exponents`, `double_descent`,
  `lazy_rich`) define
  - `NAME`;
  - `Parameters`, a frozen dataclass: one configuration (validated in `__post_init__`);
  - `compute(params) -> {name: array}`: the outputs of one configuration;
  - `SWEEP = Sweep(NAME, Parameters, compute, batched=..., execution=...)`;
  - `report(records, out_dir) -> dict`: tables, fits and figures from stored records only
    (`spectral-jax report` reruns it without computing anything). It writes `<NAME>.json`
    and `<NAME>.png` through `publish`, and its result holds `exponents`: rows of
    `quantity`, `measured`, `ci_low`, `ci_high`, `predicted` for the run's `summary.md`;
  - presets `presets/<NAME>.quick.toml` and `presets/<NAME>.full.toml`.
- **Single runs** (`kato_demo`, `shell_budget`, `renormalizability`) define a `Config`
  with `quick()`/`full()` presets and `run(config, out_dir)`.

`registry.py` lists both and finds their presets.
"""
