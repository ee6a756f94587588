/**
 * Random attention graphs in every form the passes know (and some they must leave alone): scale by mul, by
 * div or none; soft-cap or not; causal, band, one-sided window, strict-causal (not expressible) or opaque
 * masks; kᵀ by transpose or transpose_b; GQA repeats; scores used elsewhere (fusion must not fire). The
 * whole default pipeline must preserve the outputs to 1e-5 and fuse exactly what it can.
 */
import fc from 'fast-check';
import { GraphBuilder, Graph, NodeId } from '../../src/ir';
import { initCpuBackend, execute, tf } from '../../src/backends/cpu';
import { resolvePipeline, runPipeline } from '../../src/passes';

beforeAll(() => initCpuBackend('cpu'));

interface Case {
  b: number; kv: number; rep: number; t: number; d: number;
  scale: 'mul' | 'div' | 'none'; cap: number;
  mask: 'none' | 'causal' | 'band' | 'window-only' | 'strict' | 'opaque'; w: number;
  kT: 'transpose' | 'flag'; extraUse: boolean;
}

const arb: fc.Arbitrary<Case> = fc.record({
  b: fc.integer({ min: 1, max: 2 }), kv: fc.integer({ min: 1, max: 2 }), rep: fc.integer({ min: 1, max: 3 }),
  t: fc.integer({ min: 2, max: 9 }), d: fc.integer({ min: 2, max: 4 }),
  scale: fc.constantFrom('mul', 'div', 'none'), cap: fc.constantFrom(0, 1.5, 4),
  mask: fc.constantFrom('none', 'causal', 'band', 'window-only', 'strict', 'opaque'), w: fc.integer({ min: 1, max: 5 }),
  kT: fc.constantFrom('transpose', 'flag'), extraUse: fc.boolean(),
});

function build(c: Case): Graph {
  const g = new GraphBuilder('rand');
  const h = c.kv * c.rep;
  const q = g.input('q', { dtype: 'f32', shape: [c.b, h, c.t, c.d] });
  let k = g.input('k', { dtype: 'f32', shape: [c.b, c.kv, c.t, c.d] });
  let v = g.input('v', { dtype: 'f32', shape: [c.b, c.kv, c.t, c.d] });
  const opaque = g.input('m', { dtype: 'bool', shape: [c.t, c.t] });
  const repeat = (x: NodeId) =>
    g.op('reshape', [g.op('broadcast', [g.op('reshape', [x], { shape: [c.b, c.kv, 1, c.t, c.d] })], { shape: [c.b, c.kv, c.rep, c.t, c.d] })], { shape: [c.b, h, c.t, c.d] });
  if (c.rep > 1) [k, v] = [repeat(k), repeat(v)];
  let s = c.kT === 'transpose' ? g.op('matmul', [q, g.op('transpose', [k], { perm: [0, 1, 3, 2] })]) : g.op('matmul', [q, k], { transpose_b: true });
  if (c.scale === 'mul') s = g.op('mul', [s, g.constant(0.7)]);
  if (c.scale === 'div') s = g.op('div', [s, g.constant(1.3)]);
  const extra = s;
  if (c.cap) s = g.op('mul', [g.constant(c.cap), g.op('tanh', [g.op('div', [s, g.constant(c.cap)])])]);
  const i = g.op('iota', [], { shape: [c.t, c.t], axis: 0, dtype: 'i32' });
  const j = g.op('iota', [], { shape: [c.t, c.t], axis: 1, dtype: 'i32' });
  const band = () => g.op('compare', [g.op('sub', [i, j]), g.constant(c.w, 'i32')], { dir: 'lt' });
  const causal = () => g.op('compare', [j, i], { dir: 'le' });
  const m = { none: undefined, causal: causal(), band: g.op('and', [causal(), band()]), 'window-only': band(), strict: g.op('compare', [j, i], { dir: 'lt' }), opaque }[c.mask];
  if (m !== undefined) s = g.op('select', [m, s, g.constant(-Infinity)]);
  const o = g.op('matmul', [g.op('softmax', [s], { axis: -1 }), v]);
  const outputs = [{ name: 'o', node: o }];
  if (c.extraUse) outputs.push({ name: 'scores', node: extra });
  return g.build({ outputs });
}

function runAll(g: Graph, feeds: Record<string, tf.Tensor>): Record<string, Float32Array> {
  const r = execute(g, feeds, new Map());
  const out: Record<string, Float32Array> = {};
  for (const [k, t] of Object.entries(r.outputs)) {
    out[k] = t.dataSync() as Float32Array;
    t.dispose();
  }
  return out;
}

test('the default pipeline preserves random attention graphs and fuses what it can', () => {
  const passes = resolvePipeline();
  fc.assert(
    fc.property(arb, fc.integer({ min: 1, max: 1000 }), (c, seed) => {
      const g0 = build(c);
      const { graph: g1 } = runPipeline(g0, passes);
      const h = c.kv * c.rep;
      const feeds = {
        q: tf.randomNormal([c.b, h, c.t, c.d], 0, 1, 'float32', seed),
        k: tf.randomNormal([c.b, c.kv, c.t, c.d], 0, 1, 'float32', seed + 1),
        v: tf.randomNormal([c.b, c.kv, c.t, c.d], 0, 1, 'float32', seed + 2),
        m: tf.tidy(() => tf.logicalOr(tf.greater(tf.randomUniform([c.t, c.t], 0, 1, 'float32', seed + 3), 0.5), tf.cast(tf.eye(c.t), 'bool'))),
      };
      try {
        const a = runAll(g0, feeds);
        const b = runAll(g1, feeds);
        for (const k of Object.keys(a)) {
          for (let x = 0; x < a[k].length; x++) {
            const same = (Number.isNaN(a[k][x]) && Number.isNaN(b[k][x])) || Math.abs(a[k][x] - b[k][x]) <= 1e-5;
            if (!same) throw new Error(`${k}[${x}]: ${a[k][x]} vs ${b[k][x]} for ${JSON.stringify(c)}`);
          }
        }
      } finally {
        Object.values(feeds).forEach((t) => t.dispose());
      }
      const fa = g1.nodes.filter((n) => n.op === 'fused_attention');
      expect(fa.length).toBe(c.extraUse ? 0 : 1);
      if (fa.length) {
        const n = fa[0];
        const convertible = ['none', 'causal', 'band', 'window-only'].includes(c.mask);
        expect(n.inputs.length).toBe(convertible ? 3 : 4);
        if (c.mask === 'causal') expect([n.attrs.causal, n.attrs.window]).toEqual([true, 0]);
        if (c.mask === 'band') expect([n.attrs.causal, n.attrs.window]).toEqual([true, c.w]);
        if (c.mask === 'window-only') expect([n.attrs.causal, n.attrs.window]).toEqual([false, c.w]);
        expect(n.attrs.groups).toBe(c.rep);
        expect(n.attrs.softcap).toBe(c.cap);
        expect(g1.nodes.some((x) => x.op === 'broadcast')).toBe(false);
      }
    }),
    { numRuns: 60, seed: 4242 },
  );
});
