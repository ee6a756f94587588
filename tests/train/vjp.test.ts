/**
 * Finite-difference checks of every derivative rule in the op registry. Each case builds one op on params,
 * takes loss = Σ w ⊙ op(...) with a fixed random w, differentiates it with the autodiff transform, and compares
 * the directional derivative <grad, v> with the central difference (L(p + εv) - L(p - εv)) / 2ε along random v.
 * A test fails if a registered op with a derivative rule has no case here.
 */
import { allOps, GraphBuilder, NodeId, DType, Shape, Attrs } from '../../src/ir';
import { grad } from '../../src/train';
import { tf, rng, run, useCpu } from './helpers';

type Gen = 'any' | 'pos' | 'unit' | 'bool' | { int: number };
interface Arg {
  shape: number[];
  gen?: Gen;
  dtype?: DType;
}
interface Case {
  name: string;
  op: string;
  args: Arg[];
  attrs?: Attrs;
  /** ε for the central difference (default 1e-2). */
  eps?: number;
}

const f = (shape: number[], gen: Gen = 'any'): Arg => ({ shape, gen });
const int = (shape: number[], n: number): Arg => ({ shape, gen: { int: n }, dtype: 'i32' });
const bool = (shape: number[]): Arg => ({ shape, gen: 'bool', dtype: 'bool' });

const CASES: Case[] = [
  { name: 'add (broadcast)', op: 'add', args: [f([2, 3]), f([3])] },
  { name: 'sub (broadcast)', op: 'sub', args: [f([2, 1]), f([2, 3])] },
  { name: 'mul (broadcast)', op: 'mul', args: [f([2, 3]), f([1, 3])] },
  { name: 'div (broadcast)', op: 'div', args: [f([2, 3]), f([3], 'pos')] },
  { name: 'max', op: 'max', args: [f([2, 3]), f([2, 3])], eps: 1e-3 },
  { name: 'min (broadcast)', op: 'min', args: [f([2, 3]), f([3])], eps: 1e-3 },
  { name: 'pow', op: 'pow', args: [f([2, 3], 'pos'), f([2, 3])] },
  { name: 'select', op: 'select', args: [bool([2, 3]), f([2, 3]), f([3])] },
  { name: 'neg', op: 'neg', args: [f([4])] },
  { name: 'abs', op: 'abs', args: [f([6])] },
  { name: 'exp', op: 'exp', args: [f([5])] },
  { name: 'log', op: 'log', args: [f([5], 'pos')] },
  { name: 'tanh', op: 'tanh', args: [f([5])] },
  { name: 'rsqrt', op: 'rsqrt', args: [f([5], 'pos')] },
  { name: 'sqrt', op: 'sqrt', args: [f([5], 'pos')] },
  { name: 'sin', op: 'sin', args: [f([5])] },
  { name: 'cos', op: 'cos', args: [f([5])] },
  { name: 'sigmoid', op: 'sigmoid', args: [f([5])] },
  { name: 'gelu_tanh', op: 'gelu_tanh', args: [f([7])] },
  { name: 'cast f32→f16', op: 'cast', args: [f([4])], attrs: { dtype: 'f16' } },
  { name: 'matmul', op: 'matmul', args: [f([3, 4]), f([4, 2])] },
  { name: 'matmul bᵀ, batched a, shared b', op: 'matmul', args: [f([2, 3, 4]), f([5, 4])], attrs: { transpose_b: true } },
  { name: 'matmul aᵀ', op: 'matmul', args: [f([4, 3]), f([4, 2])], attrs: { transpose_a: true } },
  { name: 'matmul aᵀ bᵀ batched', op: 'matmul', args: [f([2, 4, 3]), f([2, 5, 4])], attrs: { transpose_a: true, transpose_b: true } },
  { name: 'matmul batched broadcast', op: 'matmul', args: [f([2, 2, 3, 4]), f([1, 2, 4, 3])] },
  { name: 'matmul broadcast in a middle batch dim', op: 'matmul', args: [f([1, 2, 2, 3, 4]), f([1, 2, 1, 5, 4])], attrs: { transpose_b: true } },
  { name: 'matmul bᵀ with a softcap epilogue (LM head)', op: 'matmul', args: [f([2, 3, 4]), f([5, 4])], attrs: { transpose_b: true, softcap: 0.7 } },
  { name: 'reduce sum', op: 'reduce', args: [f([2, 3, 4])], attrs: { kind: 'sum', axes: [0, 2] } },
  { name: 'reduce sum keepdims', op: 'reduce', args: [f([2, 3])], attrs: { kind: 'sum', axes: [-1], keepdims: true } },
  { name: 'reduce mean', op: 'reduce', args: [f([2, 3, 4])], attrs: { kind: 'mean', axes: [1] } },
  { name: 'reduce max', op: 'reduce', args: [f([3, 4])], attrs: { kind: 'max', axes: [1], keepdims: true }, eps: 1e-3 },
  { name: 'reduce max (no keepdims)', op: 'reduce', args: [f([3, 4])], attrs: { kind: 'max', axes: [0] }, eps: 1e-3 },
  { name: 'softmax last', op: 'softmax', args: [f([2, 5])], attrs: { axis: -1 } },
  { name: 'softmax axis 0', op: 'softmax', args: [f([3, 2])], attrs: { axis: 0 } },
  { name: 'log_softmax last', op: 'log_softmax', args: [f([2, 5])], attrs: { axis: -1 } },
  { name: 'log_softmax axis 0', op: 'log_softmax', args: [f([3, 2])], attrs: { axis: 0 } },
  { name: 'reshape', op: 'reshape', args: [f([2, 6])], attrs: { shape: [3, 4] } },
  { name: 'transpose', op: 'transpose', args: [f([2, 3, 4])], attrs: { perm: [2, 0, 1] } },
  { name: 'broadcast', op: 'broadcast', args: [f([3, 1])], attrs: { shape: [2, 3, 4] } },
  { name: 'slice', op: 'slice', args: [f([2, 6])], attrs: { axis: 1, start: 1, end: 4 } },
  { name: 'concat', op: 'concat', args: [f([2, 2]), f([2, 3])], attrs: { axis: -1 } },
  { name: 'gather', op: 'gather', args: [f([5, 3]), int([2, 3], 5)] },
  { name: 'segment_sum', op: 'segment_sum', args: [f([4, 3]), int([4], 5)], attrs: { num: 5 } },
  { name: 'take_along_axis', op: 'take_along_axis', args: [f([2, 3, 5]), int([2, 3, 4], 5)] },
  { name: 'scatter_add', op: 'scatter_add', args: [f([2, 4]), int([2, 4], 6)], attrs: { size: 6 } },
  { name: 'compare (no derivative)', op: 'compare', args: [f([3]), f([3])], attrs: { dir: 'lt' } },
  { name: 'and (no derivative)', op: 'and', args: [bool([3]), bool([3])] },
  { name: 'or (no derivative)', op: 'or', args: [bool([3]), bool([3])] },
  { name: 'not (no derivative)', op: 'not', args: [bool([3])] },
];

/** Extra cases contributed for ops defined elsewhere (fused ops), keyed by op name; added when the op exists. */
import { FUSED_CASES } from './fused-cases';
CASES.push(...FUSED_CASES.filter((c) => allOps().some((o) => o.name === c.op)));

function values(a: Arg, r: () => number): number[] {
  const n = a.shape.reduce((x, y) => x * y, 1);
  const g = a.gen ?? 'any';
  return Array.from({ length: n }, () => {
    if (g === 'bool') return r() < 0.5 ? 1 : 0;
    if (typeof g === 'object') return Math.floor(r() * g.int);
    if (g === 'pos') return 0.5 + r() * 1.5;
    if (g === 'unit') return r();
    // away from 0 so abs/max/min are differentiable at the sample
    const v = (r() * 2 - 1) * 1.5;
    return Math.abs(v) < 0.1 ? v + Math.sign(v || 1) * 0.2 : v;
  });
}

beforeAll(useCpu);

test('every op with a derivative rule has a finite-difference case', () => {
  const covered = new Set(CASES.map((c) => c.op));
  const missing = allOps().filter((o) => o.vjp && !covered.has(o.name)).map((o) => o.name);
  expect(missing).toEqual([]);
});

describe.each(CASES.map((c) => [c.name, c] as const))('vjp of %s', (_name, c) => {
  test('matches central differences', () => {
    const r = rng(c.name.length * 7919 + c.op.charCodeAt(0));
    const b = new GraphBuilder(c.name);
    const params = new Map<string, tf.Tensor>();
    const feeds: Record<string, tf.Tensor> = {};
    const ins: NodeId[] = [];
    const diff: string[] = [];
    c.args.forEach((a, i) => {
      const dtype = a.dtype ?? 'f32';
      const vals = values(a, r);
      if (dtype === 'f32') {
        const name = `x${i}`;
        ins.push(b.param(name, { dtype, shape: a.shape }));
        params.set(name, tf.tensor(vals, a.shape, 'float32'));
        diff.push(name);
      } else {
        const name = `in${i}`;
        ins.push(b.input(name, { dtype, shape: a.shape as Shape }));
        feeds[name] = tf.tensor(vals, a.shape, dtype === 'bool' ? 'bool' : 'int32');
      }
    });
    const y = b.op(c.op, ins, c.attrs ?? {});
    const yt = b.type(y);
    if (yt.dtype === 'bool') {
      // Ops without a float result pass no cotangent to any input.
      const dummy = b.constant(1, 'f32', yt.shape);
      expect(allOps().find((o) => o.name === c.op)!.vjp!(b, b.node(y), dummy).every((d) => d === null)).toBe(true);
      return;
    }
    const wshape = yt.shape as number[];
    const w = b.param('w', { dtype: yt.dtype, shape: wshape });
    params.set('w', tf.tensor(values(f(wshape), r), wshape, 'float32'));
    const loss = b.op('reduce', [b.op('mul', [y, w])], { kind: 'sum', axes: wshape.map((_, i) => i) });
    const g = b.build({ outputs: [{ name: 'loss', node: loss }] });
    const gg = grad(g, 'loss', diff);

    const analytic = run(gg, feeds, params);
    const eps = c.eps ?? 1e-2;
    for (let trial = 0; trial < 3; trial++) {
      const dirs = new Map(diff.map((n) => [n, Float32Array.from(values(f(params.get(n)!.shape), r))]));
      let dot = 0;
      for (const n of diff) {
        const gv = analytic[`grad.${n}`];
        const v = dirs.get(n)!;
        for (let i = 0; i < v.length; i++) dot += gv[i] * v[i];
      }
      const shifted = (s: number) => {
        const p = new Map(params);
        for (const n of diff) p.set(n, tf.tidy(() => tf.add(params.get(n)!, tf.mul(tf.tensor(dirs.get(n)!, params.get(n)!.shape), s))));
        const out = run(g, feeds, p)['loss'][0];
        for (const n of diff) p.get(n)!.dispose();
        return out;
      };
      const fd = (shifted(eps) - shifted(-eps)) / (2 * eps);
      expect(Math.abs(fd - dot)).toBeLessThanOrEqual(2e-2 * Math.max(Math.abs(fd), Math.abs(dot)) + 2e-3);
    }
    for (const t of params.values()) t.dispose();
    for (const t of Object.values(feeds)) t.dispose();
  });
});
