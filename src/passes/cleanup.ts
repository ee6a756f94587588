/**
 * Clean-up passes: constant folding, common-subexpression elimination, dead-code elimination and
 * reshape / transpose simplification.
 */
import { freezeDeep } from '../ir/freeze';
import { Graph, Node, NodeId, DType } from '../ir/types';
import { getOp } from '../ir/op';
import { encodeNumber } from '../ir/builder';
import { staticNumel, typeEq, shapeEq } from '../ir/shape';
import { DotDims, GatherDims, XlaBinary, XlaBuilder, XlaCompare, XlaReducer, XlaType, XlaUnary, XlaValue } from '../ir/xla';
import { definePass, Pass } from './types';
import { applyRules, rule } from './rewrite';
import { constValue, pat } from './pattern';

class NotFoldable extends Error {}

const f32 = Math.fround;

/**
 * Evaluates an op's own XLA lowering on splat values (one number per tensor), so constant folding needs no
 * table of op semantics: any op whose lowering only uses value-preserving ops on splats folds.
 */
class SplatBuilder implements XlaBuilder {
  private vals = new Map<string, number>();
  private n = 0;
  v(type: XlaType, value: number): XlaValue {
    const ref = `%s${this.n++}`;
    this.vals.set(ref, round(value, type.dtype));
    return { ref, type };
  }
  val(x: XlaValue): number {
    const v = this.vals.get(x.ref);
    if (v === undefined) throw new NotFoldable();
    return v;
  }
  constant(value: number, type: XlaType) { return this.v(type, value); }
  iota(): XlaValue { throw new NotFoldable(); }
  unary(op: XlaUnary, x: XlaValue) {
    const a = this.val(x);
    const r: Record<XlaUnary, () => number> = {
      negate: () => -a, exponential: () => Math.exp(a), log: () => Math.log(a), tanh: () => Math.tanh(a),
      rsqrt: () => 1 / Math.sqrt(a), sqrt: () => Math.sqrt(a), sine: () => Math.sin(a), cosine: () => Math.cos(a),
      abs: () => Math.abs(a), logistic: () => 1 / (1 + Math.exp(-a)), not: () => (a ? 0 : 1),
    };
    return this.v(op === 'not' ? { dtype: 'bool', shape: x.type.shape } : x.type, r[op]());
  }
  binary(op: XlaBinary, x: XlaValue, y: XlaValue) {
    const [a, b] = [this.val(x), this.val(y)];
    const int = x.type.dtype === 'i32' || x.type.dtype === 'i64';
    const r: Record<XlaBinary, () => number> = {
      add: () => a + b, subtract: () => a - b, multiply: () => a * b, divide: () => (int ? Math.floor(a / b) : a / b),
      maximum: () => Math.max(a, b), minimum: () => Math.min(a, b), power: () => Math.pow(a, b),
      and: () => (a && b ? 1 : 0), or: () => (a || b ? 1 : 0), remainder: () => a % b,
    };
    if (int && (op === 'divide' || op === 'remainder') && b === 0) throw new NotFoldable();
    return this.v(x.type, r[op]());
  }
  compare(dir: XlaCompare, x: XlaValue, y: XlaValue) {
    const [a, b] = [this.val(x), this.val(y)];
    const r = { LT: a < b, LE: a <= b, GT: a > b, GE: a >= b, EQ: a === b, NE: a !== b }[dir];
    return this.v({ dtype: 'bool', shape: x.type.shape }, r ? 1 : 0);
  }
  select(p: XlaValue, a: XlaValue, b: XlaValue) { return this.v(a.type, this.val(p) ? this.val(a) : this.val(b)); }
  convert(x: XlaValue, dtype: DType) {
    const a = this.val(x);
    return this.v({ dtype, shape: x.type.shape }, dtype === 'bool' ? (a ? 1 : 0) : dtype === 'i32' || dtype === 'i64' ? Math.trunc(a) : a);
  }
  dot(): XlaValue { throw new NotFoldable(); }
  reduce(x: XlaValue, dims: readonly number[], r: XlaReducer) {
    const a = this.val(x);
    const count = dims.reduce((k, d) => k * x.type.shape[d], 1);
    const shape = x.type.shape.filter((_, i) => !dims.includes(i));
    if (r === 'max' || r === 'min' || count === 1) return this.v({ dtype: x.type.dtype, shape }, a);
    // a sum of equal values is exact only for small integers
    if (r === 'add' && Number.isInteger(a) && Math.abs(a * count) < 2 ** 24) return this.v({ dtype: x.type.dtype, shape }, a * count);
    throw new NotFoldable();
  }
  reshape(x: XlaValue, shape: readonly number[]) { return this.v({ dtype: x.type.dtype, shape }, this.val(x)); }
  transpose(x: XlaValue, perm: readonly number[]) { return this.v({ dtype: x.type.dtype, shape: perm.map((p) => x.type.shape[p]) }, this.val(x)); }
  broadcastInDim(x: XlaValue, shape: readonly number[]) { return this.v({ dtype: x.type.dtype, shape }, this.val(x)); }
  slice(x: XlaValue, start: readonly number[], limit: readonly number[], strides?: readonly number[]) {
    return this.v({ dtype: x.type.dtype, shape: start.map((s, i) => Math.ceil((limit[i] - s) / (strides?.[i] ?? 1))) }, this.val(x));
  }
  concatenate(xs: readonly XlaValue[], dim: number) {
    const vs = xs.map((x) => this.val(x));
    if (vs.some((v) => !Object.is(v, vs[0]))) throw new NotFoldable();
    const shape = [...xs[0].type.shape];
    shape[dim] = xs.reduce((a, x) => a + x.type.shape[dim], 0);
    return this.v({ dtype: xs[0].type.dtype, shape }, vs[0]);
  }
  gather(operand: XlaValue, _i: XlaValue, _d: GatherDims, outShape: readonly number[]) { return this.v({ dtype: operand.type.dtype, shape: outShape }, this.val(operand)); }
  dynamicUpdateSlice(operand: XlaValue, update: XlaValue) {
    const [a, u] = [this.val(operand), this.val(update)];
    if (!Object.is(a, u)) throw new NotFoldable();
    return this.v(operand.type, a);
  }
}

function round(v: number, dtype: DType): number {
  if (dtype === 'f32') return f32(v);
  if (dtype === 'i32') return v | 0;
  if (dtype === 'bool') return v ? 1 : 0;
  return v; // bf16/f16/i64: kept in double (values are rounded by the backend that loads them)
}

/** The splat value `n` evaluates to when all its inputs are constants, or undefined. */
export function foldNode(n: Node, input: (id: NodeId) => Node): number | undefined {
  const def = getOp(n.op);
  if (def.source || !def.xla || n.op === 'constant' || n.inputs.length === 0) return undefined;
  if (!n.inputs.every((i) => input(i).op === 'constant')) return undefined;
  const ins = n.inputs.map(input);
  const shapes = [n.type.shape, ...ins.map((i) => i.type.shape)];
  if (shapes.some((s) => staticNumel(s) === undefined)) return undefined;
  const sb = new SplatBuilder();
  try {
    const vals = ins.map((i) => sb.v({ dtype: i.type.dtype, shape: i.type.shape as number[] }, constValue(i)!));
    const out = def.xla(sb, vals, n, { dtype: n.type.dtype, shape: n.type.shape as number[] });
    return round(sb.val(out), n.type.dtype);
  } catch (e) {
    if (e instanceof NotFoldable) return undefined;
    throw e;
  }
}

export const constantFolding: Pass = definePass({
  name: 'constant-folding',
  description: 'evaluate ops whose inputs are all constants (through the op\'s own XLA lowering on splats); x*1, x+0 → x',
  run: (g, ctx) =>
    applyRules(
      g,
      [
        rule('fold', pat.any(), (_v, b, m) => {
          const n = b.node(m.root);
          const v = foldNode(n, (id) => b.node(id));
          return v === undefined ? m.root : b.constant(v, n.type.dtype, n.type.shape);
        }),
        rule('mul-one', pat.op('mul', [pat.v('x'), pat.const(1)]), ({ x }) => x, { when: ({ x }, m) => typeEq(m.graph.type(x), m.graph.type(m.root)) }),
        rule('add-zero', pat.op('add', [pat.v('x'), pat.const(0)]), ({ x }) => x, { when: ({ x }, m) => typeEq(m.graph.type(x), m.graph.type(m.root)) }),
      ],
      ctx,
    ),
});

/** JSON with every object's keys in sorted order: equal attributes give equal keys whatever order their keys were written in. */
function attrKey(v: unknown): string {
  return JSON.stringify(v, sortedKeys);
}

/** A JSON.stringify replacer: objects whose keys are out of order are replaced by a sorted copy (most are in order). */
function sortedKeys(_k: string, x: unknown): unknown {
  if (!x || typeof x !== 'object' || Array.isArray(x)) return x;
  const keys = Object.keys(x);
  for (let i = 1; i < keys.length; i++) {
    if (keys[i - 1] > keys[i]) return Object.fromEntries(keys.sort().map((k) => [k, (x as Record<string, unknown>)[k]]));
  }
  return x;
}

/**
 * The nodes CSE keeps, grouped by op and (canonical) inputs. Attributes and types are compared only within a
 * group, so most nodes, alone in theirs, never have their attributes serialized.
 */
class KeptNodes {
  private readonly groups = new Map<string, Node[]>();
  private readonly keys = new Map<Node, string>();

  /** The kept node with the op, inputs, attributes and type of `n` (with inputs `ins`), if any. */
  find(n: Node, ins: readonly NodeId[]): Node | undefined {
    const group = this.groups.get(KeptNodes.group(n, ins));
    return group?.find((p) => this.key(p) === this.key(n));
  }

  add(n: Node, ins: readonly NodeId[]): void {
    const g = KeptNodes.group(n, ins);
    const group = this.groups.get(g);
    if (group) group.push(n);
    else this.groups.set(g, [n]);
  }

  private static group(n: Node, ins: readonly NodeId[]): string {
    return `${n.op}|${ins.join(',')}`;
  }

  /** Attributes and type, as a string. */
  private key(n: Node): string {
    let k = this.keys.get(n);
    if (k === undefined) {
      k = `${attrKey(n.attrs)}|${n.type.dtype}[${n.type.shape.join(',')}]`;
      this.keys.set(n, k);
    }
    return k;
  }
}

export const cse: Pass = definePass({
  name: 'cse',
  description: 'common-subexpression elimination: one node per (op, inputs, attributes)',
  run: (g, ctx) => {
    const canon = new Map<NodeId, NodeId>();
    const kept = new KeptNodes();
    const nodes: Node[] = [];
    for (let k = 0; k < g.nodes.length; k++) {
      const n = g.nodes[k];
      const ins = n.inputs.map((i) => canon.get(i) ?? i);
      const changedIns = ins.some((i, k) => i !== n.inputs[k]);
      const m = changedIns ? { ...n, inputs: ins } : n;
      if (!getOp(n.op).source) {
        const prev = kept.find(n, ins);
        if (prev !== undefined) {
          canon.set(n.id, prev.id);
          ctx.record({ rule: 'merge', replaced: [n.id], created: [prev.id], scope: n.scope });
          continue;
        }
        kept.add(n, ins);
      }
      nodes.push(m);
    }
    if (!canon.size) return g;
    const c = (id: NodeId) => canon.get(id) ?? id;
    return freezeDeep({ ...g, nodes, outputs: g.outputs.map((o) => ({ ...o, node: c(o.node) })), taps: Object.fromEntries(Object.entries(g.taps).map(([s, id]) => [s, c(id)])) });
  },
});

export const dce: Pass = definePass({
  name: 'dce',
  description: 'dead-code elimination: drop nodes no output or tap depends on (graph inputs are kept)',
  run: (g, ctx) => {
    const live = new Set<NodeId>([...g.outputs.map((o) => o.node), ...Object.values(g.taps)]);
    for (let i = g.nodes.length - 1; i >= 0; i--) {
      const n = g.nodes[i];
      if (n.op === 'input') live.add(n.id);
      if (live.has(n.id)) for (const x of n.inputs) live.add(x);
    }
    if (live.size === g.nodes.length) return g;
    const dead = g.nodes.filter((n) => !live.has(n.id));
    if (!dead.length) return g;
    ctx.record({ rule: 'dead', replaced: dead.map((n) => n.id), created: [], scope: '' });
    return freezeDeep({ ...g, nodes: g.nodes.filter((n) => live.has(n.id)) });
  },
});

const isSwapLast2 = (perm: readonly number[]) => perm.length >= 2 && perm.every((p, i) => (i < perm.length - 2 ? p === i : p === (i === perm.length - 2 ? perm.length - 1 : perm.length - 2)));

export const reshapeSimplify: Pass = definePass({
  name: 'reshape-simplify',
  description: 'reshape/transpose/broadcast/cast simplification: no-ops vanish, chains merge, transposes feed matmul flags',
  run: (g, ctx) =>
    applyRules(
      g,
      [
        rule('noop', pat.op(['reshape', 'broadcast', 'cast'], [pat.v('x')]), ({ x }) => x, { when: ({ x }, m) => typeEq(m.graph.type(x), m.graph.type(m.root)) }),
        rule('transpose-identity', pat.op('transpose', [pat.v('x')], { attrs: { perm: (p) => (p as number[]).every((v, i) => v === i) } }), ({ x }) => x),
        rule('reshape-reshape', pat.op('reshape', [pat.op('reshape', [pat.v('x')])]), ({ x }, b, m) => b.op('reshape', [x], { shape: [...b.type(m.root).shape] })),
        rule('transpose-transpose', pat.op('transpose', [pat.op('transpose', [pat.v('x')], { as: 'inner' })]), ({ x, inner }, b, m) => {
          const p1 = b.node(inner).attrs.perm as number[];
          const p2 = b.node(m.root).attrs.perm as number[];
          return b.op('transpose', [x], { perm: p2.map((p) => p1[p]) });
        }),
        rule(
          'matmul-transpose-b',
          pat.op('matmul', [pat.v('a'), pat.op('transpose', [pat.v('x')], { attrs: { perm: (p) => isSwapLast2(p as number[]) } })]),
          ({ a, x }, b, m) => {
            const at = b.node(m.root).attrs;
            return b.op('matmul', [a, x], { ...at, transpose_b: !at.transpose_b });
          },
        ),
        rule(
          'matmul-transpose-a',
          pat.op('matmul', [pat.op('transpose', [pat.v('x')], { attrs: { perm: (p) => isSwapLast2(p as number[]) } }), pat.v('y')]),
          ({ x, y }, b, m) => {
            const at = b.node(m.root).attrs;
            return b.op('matmul', [x, y], { ...at, transpose_a: !at.transpose_a });
          },
          // a rank-2 weight on the right is shared across the batch; keep the left operand's batch layout
          { when: ({ x, y }, m) => shapeEq(m.graph.type(x).shape.slice(0, -2), m.graph.type(y).shape.slice(0, -2)) },
        ),
      ],
      ctx,
    ),
});

export { encodeNumber };
