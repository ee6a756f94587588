/**
 * Sliding-window masking: recognises a causal or band mask built from iota/compare (as the prelude's
 * causal_mask writes it: `j <= i && i - j < window`) in a fused attention's mask input, and turns it into the
 * attributes `causal` and `window`, so no [t, s] mask is materialised and a local layer computes only its band.
 *
 * The analysis is symbolic: every compare is reduced to a bound on d = i − j (i = query index = iota along
 * the second-to-last axis, j = key index = iota along the last axis), conjunctions intersect the bounds, and
 * the result is accepted when it is exactly `0 ≤ d` (causal), `d ≤ w − 1` (window w), both, or neither.
 */
import { Graph, NodeId } from '../ir/types';
import { dimEq } from '../ir/shape';
import { definePass, Pass } from './types';
import { applyRules, rule, Rule } from './rewrite';
import { GraphView, constValue, pat } from './pattern';

/** ci·i + cj·j + c */
interface Lin {
  ci: number;
  cj: number;
  c: number;
}
/** lo ≤ i − j ≤ hi */
export interface Band {
  lo: number;
  hi: number;
}

function lin(g: GraphView, id: NodeId, t: unknown, s: unknown): Lin | null {
  const n = g.node(id);
  switch (n.op) {
    case 'constant': {
      const v = constValue(n);
      return v === undefined || !Number.isFinite(v) ? null : { ci: 0, cj: 0, c: v };
    }
    case 'iota': {
      const shape = n.type.shape;
      const fromEnd = shape.length - 1 - (n.attrs.axis as number);
      if (fromEnd === 0 && dimEq(shape[shape.length - 1], s as never)) return { ci: 0, cj: 1, c: 0 };
      if (fromEnd === 1 && dimEq(shape[shape.length - 2], t as never)) return { ci: 1, cj: 0, c: 0 };
      return null;
    }
    case 'cast':
    case 'broadcast':
      return lin(g, n.inputs[0], t, s);
    case 'neg': {
      const a = lin(g, n.inputs[0], t, s);
      return a && { ci: -a.ci, cj: -a.cj, c: -a.c };
    }
    case 'add':
    case 'sub': {
      const a = lin(g, n.inputs[0], t, s);
      const b = a && lin(g, n.inputs[1], t, s);
      if (!a || !b) return null;
      const k = n.op === 'add' ? 1 : -1;
      return { ci: a.ci + k * b.ci, cj: a.cj + k * b.cj, c: a.c + k * b.c };
    }
    case 'mul': {
      const a = lin(g, n.inputs[0], t, s);
      const b = a && lin(g, n.inputs[1], t, s);
      if (!a || !b) return null;
      if (a.ci === 0 && a.cj === 0) return { ci: a.c * b.ci, cj: a.c * b.cj, c: a.c * b.c };
      if (b.ci === 0 && b.cj === 0) return { ci: b.c * a.ci, cj: b.c * a.cj, c: b.c * a.c };
      return null;
    }
    default:
      return null;
  }
}

const ALL: Band = { lo: -Infinity, hi: Infinity };
const NEGATE: Record<string, string> = { lt: 'ge', le: 'gt', gt: 'le', ge: 'lt', eq: 'ne', ne: 'eq' };

function compareBand(g: GraphView, a: NodeId, b: NodeId, dir: string, t: unknown, s: unknown): Band | null {
  const la = lin(g, a, t, s);
  const lb = la && lin(g, b, t, s);
  if (!la || !lb) return null;
  let ci = la.ci - lb.ci;
  const cj = la.cj - lb.cj;
  let c = la.c - lb.c;
  // ci·i + cj·j + c  (dir)  0
  if (ci === 0 && cj === 0) {
    const ok = { lt: c < 0, le: c <= 0, gt: c > 0, ge: c >= 0, eq: c === 0, ne: c !== 0 }[dir];
    return ok ? ALL : { lo: Infinity, hi: -Infinity };
  }
  if (ci !== -cj) return null;
  if (ci < 0) {
    [ci, c] = [-ci, -c];
    dir = { lt: 'gt', le: 'ge', gt: 'lt', ge: 'le', eq: 'eq', ne: 'ne' }[dir]!;
  }
  // d (dir) k  with d = i − j integer
  const k = -c / ci;
  switch (dir) {
    case 'lt': return { lo: -Infinity, hi: Math.ceil(k) - 1 };
    case 'le': return { lo: -Infinity, hi: Math.floor(k) };
    case 'gt': return { lo: Math.floor(k) + 1, hi: Infinity };
    case 'ge': return { lo: Math.ceil(k), hi: Infinity };
    case 'eq': return { lo: Math.ceil(k), hi: Math.floor(k) };
    default: return null;
  }
}

/** The band a bool mask node allows, if it is a conjunction of bounds on i − j; null otherwise. */
export function maskBand(g: GraphView, id: NodeId, t: unknown, s: unknown, negate = false): Band | null {
  const n = g.node(id);
  switch (n.op) {
    case 'compare':
      return compareBand(g, n.inputs[0], n.inputs[1], negate ? NEGATE[String(n.attrs.dir)] : String(n.attrs.dir), t, s);
    case 'not':
      return maskBand(g, n.inputs[0], t, s, !negate);
    case 'broadcast':
      return maskBand(g, n.inputs[0], t, s, negate);
    case 'and': {
      if (negate) return null;
      const a = maskBand(g, n.inputs[0], t, s);
      const b = a && maskBand(g, n.inputs[1], t, s);
      return a && b && { lo: Math.max(a.lo, b.lo), hi: Math.min(a.hi, b.hi) };
    }
    case 'constant': {
      const v = constValue(n);
      return v === undefined ? null : !!v !== negate ? ALL : { lo: Infinity, hi: -Infinity };
    }
    default:
      return null;
  }
}

export const windowRules: Rule[] = [
  rule('band-mask', pat.op('fused_attention', [pat.v('q'), pat.v('k'), pat.v('v'), pat.v('mask')]), ({ q, k, v, mask }, b, m) => {
    const at = b.node(m.root).attrs;
    const t = b.type(q).shape[2];
    const s = b.type(k).shape[2];
    if (!dimEq(t, s)) return m.root; // iota indices are positions only when queries and keys coincide
    const band = maskBand(m.graph, mask, t, s);
    if (!band) return m.root;
    const lo = Math.max(band.lo, at.causal ? 0 : -Infinity);
    const hi = Math.min(band.hi, (at.window as number) > 0 ? (at.window as number) - 1 : Infinity);
    if (!(lo === 0 || lo === -Infinity) || !(hi === Infinity || (Number.isInteger(hi) && hi >= 0))) return m.root;
    return b.op('fused_attention', [q, k, v], { ...at, causal: lo === 0, window: hi === Infinity ? 0 : hi + 1 });
  }),
];

export const slidingWindow: Pass = definePass({
  name: 'sliding-window',
  description: 'a causal / band mask built from iota and compare becomes fused_attention causal + window attributes',
  run: (g: Graph, ctx) => applyRules(g, windowRules, ctx),
});
