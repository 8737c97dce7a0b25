"""Reading a network's jaxpr for the structured eNTK: where each parameter leaf is used.

The per-example function $f(\\theta, x) = $ `apply_fn(params, x[None])[0]` is traced once;
calls (`jit`, `closed_call`, `remat`) are inlined into one flat program, and every parameter
leaf is followed through *transparent* ops (dtype conversion, reshape, transpose, squeeze,
size-1 broadcasts, multiplication by a literal scalar) to the op that really uses it. A leaf
used exactly once, as one operand of a `dot_general` (`x @ W`, `nnx.Linear`, `nn.Dense`), gets
the Gram form; a bias added right after such a layer is folded into that layer's Gram product;
a leaf used once in `add`/`sub`/`mul` (biases, LayerNorm scales), `conv_general_dilated` or a
`dot_general` whose Gram form costs more, gets its per-example gradient from the shared backward
pass; anything else (weight sharing, other ops) falls back. `custom_jvp`/`custom_vjp` calls are
evaluated as they are (so `jax.nn.relu` keeps its derivative at 0); a parameter entering one
falls back. `run` evaluates the program, adding a zero probe to every Gram-form output.
"""

from __future__ import annotations

import dataclasses
import enum
import math

import jax
import jax.extend.core as jex
import jax.numpy as jnp
import numpy as np

from ._apply import scalar_outputs

__all__ = ["LeafKind", "Site", "Plan", "Program", "trace_program", "plan_program", "run"]

_P = jex.primitives
# Calls whose body is inlined: semantics-preserving, so their parameters can be followed.
_CALLS = {p for p in (getattr(_P, n, None) for n in ("jit_p", "pjit_p", "closed_call_p",
                                                     "remat_p")) if p is not None}
_RESHAPES = {_P.reshape_p, _P.squeeze_p, _P.transpose_p, _P.copy_p}


class LeafKind(enum.Enum):
    """How the jaxpr-structured eNTK treats one parameter leaf."""

    DENSE = "dense"  # w² (A A'^T) ∘ (G G'^T): layer inputs and output cotangents
    DENSE_BIAS = "dense bias"  # folded into the Gram product of the dense layer it follows
    PER_EXAMPLE = "per-example gradient"  # bias/scale/conv kernel: J_leaf from the shared pass
    FALLBACK = "fallback"  # Jacobian contraction restricted to these leaves
    UNUSED = "unused"  # the output does not depend on it: no contribution

    @property
    def structured(self) -> bool:
        return self is not LeafKind.FALLBACK


@dataclasses.dataclass(frozen=True)
class Program:
    """A flat jaxpr: `eqns` hold (primitive, params, ctx, input atoms, output slots)."""

    eqns: tuple
    consts: dict  # slot -> value
    avals: dict  # slot -> abstract value
    leaf_slots: tuple[int, ...]
    x_slot: int
    out: object  # a slot or a Literal


@dataclasses.dataclass(frozen=True)
class Site:
    """A `dot_general` with one parameter operand, in Gram form: A (R, C), G (R, F)."""

    eqn: int
    leaf: int
    a_pos: int  # operand position of the layer input A
    a_perm: tuple[int, ...]  # A's axes as (free..., contracting...)
    g_perm: tuple[int, ...]  # output axes as (A-free..., parameter-free...)
    rows: int
    cols: int
    feats: int
    weight: float  # squared literal scale on the parameter
    bias: float = 0.0  # squared scale of a folded bias (0: none)


@dataclasses.dataclass(frozen=True)
class Plan:
    kinds: tuple[LeafKind, ...]
    primitives: tuple[str | None, ...]  # the primitive that uses each leaf
    sites: tuple[Site, ...]
    direct: tuple[int, ...]  # PER_EXAMPLE leaves
    fallback: tuple[int, ...]


def trace_program(apply_fn, leaves, treedef, x_example) -> Program:
    """Trace the per-example function on abstract values and inline its calls."""

    def f(leaf_vals, xs):
        out = apply_fn(jax.tree.unflatten(treedef, leaf_vals), xs[None])
        return scalar_outputs(out, 1, "empirical_ntk")[0]

    closed = jax.make_jaxpr(f)([_spec(v) for v in leaves], _spec(x_example))
    eqns, consts, avals = [], {}, {}

    def new(aval, value=None, is_const=False):
        slot = len(avals)
        avals[slot] = aval
        if is_const:
            consts[slot] = value
        return slot

    def inline(jaxpr, const_atoms, in_atoms):
        env = dict(zip(jaxpr.constvars, const_atoms)) | dict(zip(jaxpr.invars, in_atoms))
        read = lambda v: v if isinstance(v, jex.Literal) else env[v]  # noqa: E731
        for eqn in jaxpr.eqns:
            ins = tuple(read(v) for v in eqn.invars)
            body = _call_body(eqn)
            if body is not None:
                sub, sub_consts = body
                outs = inline(sub, [new(c.aval if hasattr(c, "aval") else jax.typeof(c), c,
                                        True) for c in sub_consts], ins)
            else:
                outs = tuple(new(v.aval) for v in eqn.outvars)
                eqns.append((eqn.primitive, eqn.params, eqn.ctx, ins, outs))
            env.update((v, o) for v, o in zip(eqn.outvars, outs)
                       if not isinstance(v, jex.DropVar))
        return tuple(read(v) for v in jaxpr.outvars)

    top_consts = [new(v.aval, c, True) for v, c in zip(closed.jaxpr.constvars, closed.consts)]
    invars = [new(v.aval) for v in closed.jaxpr.invars]
    (out,) = inline(closed.jaxpr, top_consts, invars)
    return Program(tuple(eqns), consts, avals, tuple(invars[:-1]), invars[-1], out)


def _spec(value):
    aval = jax.typeof(value)  # weak types kept: promotion must trace as in the real call
    return jax.ShapeDtypeStruct(aval.shape, aval.dtype, weak_type=aval.weak_type)


def _call_body(eqn):
    if eqn.primitive not in _CALLS:
        return None
    for value in eqn.params.values():
        if isinstance(value, jex.ClosedJaxpr):
            return value.jaxpr, value.consts
        if isinstance(value, jex.Jaxpr):
            return value, ()
    return None


def _shape(prog, atom):
    return tuple(atom.aval.shape if isinstance(atom, jex.Literal) else prog.avals[atom].shape)


def _scalar_literal(atom):
    if isinstance(atom, jex.Literal) and np.ndim(atom.val) == 0:
        return float(atom.val)
    return None


def _transparent(prog, eqn, pos):
    """`(isometric, scale)` if output = scale × (linear isometry or broadcast) of operand
    `pos`, else None. Isometric maps keep inner products: Gram forms stay valid through them."""
    prim, params, _, ins, outs = eqn
    size = lambda shape: math.prod(shape)  # noqa: E731
    if len(ins) == 1 and prim in _RESHAPES:
        return True, 1.0
    if len(ins) == 1 and prim is _P.convert_element_type_p:
        floats = all(jnp.issubdtype(prog.avals[s].dtype, jnp.floating) for s in (ins[0], outs[0]))
        return (True, 1.0) if floats else None
    if len(ins) == 1 and prim is _P.broadcast_in_dim_p:
        return size(_shape(prog, ins[0])) == size(_shape(prog, outs[0])), 1.0
    if prim is _P.neg_p:
        return True, -1.0
    if prim in (_P.mul_p, _P.div_p) and len(ins) == 2 and (prim is _P.mul_p or pos == 0):
        c = _scalar_literal(ins[1 - pos])
        if c is not None and c != 0.0 and _shape(prog, ins[pos]) == _shape(prog, outs[0]):
            return True, (c if prim is _P.mul_p else 1.0 / c)
    return None


def plan_program(prog: Program) -> Plan:
    """Classify every leaf (see the module docstring)."""
    num = len(prog.leaf_slots)
    tags = {slot: (k, True, 1.0) for k, slot in enumerate(prog.leaf_slots)}
    uses: dict[int, list] = {}
    terminal: list[list] = [[] for _ in range(num)]
    for i, eqn in enumerate(prog.eqns):
        ins = eqn[3]
        for pos, a in enumerate(ins):
            if not isinstance(a, jex.Literal):
                uses.setdefault(a, []).append((i, pos))
        tagged = [(pos, tags[a]) for pos, a in enumerate(ins)
                  if not isinstance(a, jex.Literal) and a in tags]
        step = _transparent(prog, eqn, tagged[0][0]) if len(tagged) == 1 else None
        if step is not None:
            (pos, (k, iso, scale)), (step_iso, step_scale) = tagged[0], step
            tags[eqn[4][0]] = (k, iso and step_iso, scale * step_scale)
        else:
            for pos, (k, iso, scale) in tagged:
                terminal[k].append((i, pos, iso, scale))
    if not isinstance(prog.out, jex.Literal) and prog.out in tags:
        terminal[tags[prog.out][0]].append(None)  # the output is the parameter itself

    kinds, prims, sites = [LeafKind.FALLBACK] * num, [None] * num, []
    for k, uses_k in enumerate(terminal):
        if not uses_k:
            kinds[k] = LeafKind.UNUSED
        elif len(uses_k) == 1 and uses_k[0] is not None:  # more than one use: weight sharing
            i, pos, iso, scale = uses_k[0]
            prims[k] = prog.eqns[i][0].name
            kinds[k], site = _classify_use(prog, tags, i, pos, iso, scale, k)
            if site is not None:
                sites.append(site)
    sites = [_fold_bias(prog, uses, tags, terminal, kinds, s) for s in sites]
    direct = tuple(k for k in range(num) if kinds[k] is LeafKind.PER_EXAMPLE)
    fallback = tuple(k for k in range(num) if kinds[k] is LeafKind.FALLBACK)
    return Plan(tuple(kinds), tuple(prims), tuple(sites), direct, fallback)


def _classify_use(prog, tags, i, pos, iso, scale, k):
    prim, params, _, ins, outs = prog.eqns[i]
    if prim in (_P.add_p, _P.sub_p, _P.mul_p, _P.conv_general_dilated_p):
        return LeafKind.PER_EXAMPLE, None
    if prim is not _P.dot_general_p:
        return LeafKind.FALLBACK, None
    (lc, rc), (lb, rb) = params["dimension_numbers"]
    other = ins[1 - pos]
    if lb or rb or not iso or (not isinstance(other, jex.Literal) and other in tags):
        return LeafKind.PER_EXAMPLE, None
    a_shape, p_shape = _shape(prog, other), _shape(prog, ins[pos])
    a_con, p_con = (lc, rc) if pos == 1 else (rc, lc)
    a_free = tuple(d for d in range(len(a_shape)) if d not in a_con)
    n_pfree = len(p_shape) - len(p_con)
    rows = math.prod(a_shape[d] for d in a_free)
    cols = math.prod(a_shape[d] for d in a_con)
    feats = math.prod(p_shape[d] for d in range(len(p_shape)) if d not in p_con)
    # Gram form per pair of inputs: R²(C + F); per-example gradient: C F.
    if rows > 1 and rows * rows * (cols + feats) > cols * feats:
        return LeafKind.PER_EXAMPLE, None
    n_out = len(a_free) + n_pfree
    g_perm = tuple(range(n_out)) if pos == 1 else (
        *range(n_pfree, n_out), *range(n_pfree))
    site = Site(i, k, 1 - pos, (*a_free, *a_con), g_perm, rows, cols, feats, scale * scale)
    return LeafKind.DENSE, site


def _fold_bias(prog, uses, tags, terminal, kinds, site):
    """Fold `y + b` into the layer's Gram product when y (one row) reaches the add only
    through isometric ops: the bias gradient is then (s_b/c) G, G the cotangent of y."""
    if site.rows != 1:
        return site
    slot, c = prog.eqns[site.eqn][4][0], 1.0
    out = None if isinstance(prog.out, jex.Literal) else prog.out
    while slot != out and len(uses.get(slot, ())) == 1:
        i, pos = uses[slot][0]
        eqn = prog.eqns[i]
        step = _transparent(prog, eqn, pos)
        if step is not None and step[0]:
            slot, c = eqn[4][0], c * step[1]
            continue
        other = eqn[3][1 - pos] if len(eqn[3]) == 2 else None
        if eqn[0] not in (_P.add_p, _P.sub_p) or isinstance(other, jex.Literal) or \
                other not in tags:
            return site
        b = tags[other][0]
        if kinds[b] is not LeafKind.PER_EXAMPLE:
            return site
        b_eqn, b_pos, b_iso, b_scale = terminal[b][0]
        same = _shape(prog, other) == _shape(prog, slot) == _shape(prog, eqn[4][0])
        if b_eqn == i and b_pos == 1 - pos and b_iso and same:
            kinds[b] = LeafKind.DENSE_BIAS
            return dataclasses.replace(site, bias=(b_scale / c) ** 2)
        return site
    return site


def run(prog: Program, plan: Plan, leaf_vals, x, probes):
    """Evaluate the program on one example; `probes[j]` is added to the output of site j.

    **Returns:** `(output scalar, [input A of each site])`.
    """
    env = dict(prog.consts) | dict(zip(prog.leaf_slots, leaf_vals)) | {prog.x_slot: x}
    at = {site.eqn: j for j, site in enumerate(plan.sites)}
    read = lambda a: a.val if isinstance(a, jex.Literal) else env[a]  # noqa: E731
    recorded = [None] * len(plan.sites)
    for i, (prim, params, ctx, ins, outs) in enumerate(prog.eqns):
        vals = [read(a) for a in ins]
        bind_params = prim.get_bind_params(params)
        if isinstance(bind_params, tuple):  # older JAX: (subfuns, params)
            subfuns, bind_params = bind_params
            vals = [*subfuns, *vals]
        manager = getattr(ctx, "manager", None)
        if manager is not None:
            with manager:
                ans = prim.bind(*vals, **bind_params)
        else:
            ans = prim.bind(*vals, **bind_params)
        ans = ans if prim.multiple_results else [ans]
        if i in at:
            j = at[i]
            recorded[j] = vals[plan.sites[j].a_pos]
            ans = [ans[0] + probes[j]]
        env.update(zip(outs, ans))
    return read(prog.out), recorded
