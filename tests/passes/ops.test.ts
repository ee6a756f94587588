/**
 * The passes' ops: fused_attention on CPU against its own primitive expansion (what the fusion pass replaces),
 * across causal/window/GQA/soft-cap/mask and query blocks; softcap; the fusion-aware cost.
 */
import { GraphBuilder, Graph, nodeCost, getNode, Node, NodeId } from '../../src/ir';
import { expandAttention, attentionPairs } from '../../src/ir/ops/fused_attention';
import { initCpuBackend, execute, tf } from '../../src/backends/cpu';

beforeAll(() => initCpuBackend('cpu'));

function rand(shape: number[], seed: number): tf.Tensor {
  return tf.randomNormal(shape, 0, 1, 'float32', seed);
}

function attnGraphs(qs: number[], ks: number[], vs: number[], attrs: Record<string, number | boolean>, mask?: number[]): [Graph, Graph] {
  const mk = (fused: boolean) => {
    const b = new GraphBuilder('attn');
    const q = b.input('q', { dtype: 'f32', shape: qs });
    const k = b.input('k', { dtype: 'f32', shape: ks });
    const v = b.input('v', { dtype: 'f32', shape: vs });
    const ins: NodeId[] = [q, k, v];
    if (mask) ins.push(b.input('mask', { dtype: 'bool', shape: mask }));
    const o = fused ? b.op('fused_attention', ins, attrs) : expandAttention(b, [q, k, v], ins[3], { attrs } as unknown as Node);
    return b.build({ outputs: [{ name: 'o', node: o }] });
  };
  return [mk(true), mk(false)];
}

function maxDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
}

describe('fused_attention on CPU equals its primitive expansion', () => {
  const cases: [string, number[], number[], number[], Record<string, number | boolean>, number[] | undefined][] = [
    ['causal, window 3, softcap, GQA 2', [2, 4, 7, 5], [2, 2, 7, 5], [2, 2, 7, 3], { scale: 0.4, softcap: 2, causal: true, window: 3, groups: 2 }, undefined],
    ['global causal, many query blocks', [1, 2, 260, 4], [1, 1, 260, 4], [1, 1, 260, 4], { scale: 0.5, softcap: 0, causal: true, window: 0, groups: 2 }, undefined],
    ['window 20 over 70 positions (several blocks, band only)', [1, 2, 70, 4], [1, 2, 70, 4], [1, 2, 70, 4], { scale: 0.3, softcap: 5, causal: true, window: 20, groups: 1 }, undefined],
    ['decoding shape t < s', [1, 2, 3, 4], [1, 1, 9, 4], [1, 1, 9, 2], { scale: 0.5, softcap: 0, causal: true, window: 4, groups: 2 }, undefined],
    ['non-causal with explicit mask', [1, 2, 5, 3], [1, 2, 5, 3], [1, 2, 5, 3], { scale: 1, softcap: 0, causal: false, window: 0, groups: 1 }, [5, 5]],
  ];
  test.each(cases)('%s', (_name, qs, ks, vs, attrs, mask) => {
    const [fused, prim] = attnGraphs(qs, ks, vs, attrs, mask);
    const feeds: Record<string, tf.Tensor> = { q: rand(qs, 1), k: rand(ks, 2), v: rand(vs, 3) };
    if (mask) {
      const m = new Uint8Array(mask[0] * mask[1]).map((_, i) => (i % 3 === 0 || i % (mask[1] + 1) === 0 ? 1 : 0));
      feeds.mask = tf.tensor(m, mask, 'bool');
    }
    const a = execute(fused, feeds, new Map()).outputs.o;
    const b = execute(prim, feeds, new Map()).outputs.o;
    expect(a.shape).toEqual(b.shape);
    expect(maxDiff(a, b)).toBeLessThan(1e-5);
    [a, b, ...Object.values(feeds)].forEach((t) => t.dispose());
  });
});

test('softcap computes cap * tanh(x / cap)', () => {
  const b = new GraphBuilder();
  const x = b.input('x', { dtype: 'f32', shape: [4] });
  const g = b.build({ outputs: [{ name: 'y', node: b.op('softcap', [x], { cap: 2 }) }] });
  const xs = tf.tensor1d([-10, -1, 0, 3]);
  const y = execute(g, { x: xs }, new Map()).outputs.y.dataSync();
  [-10, -1, 0, 3].forEach((v, i) => expect(y[i]).toBeCloseTo(2 * Math.tanh(v / 2), 6));
  expect(() => b.op('softcap', [x], { cap: 0 })).toThrow(/positive/);
});

describe('fused_attention cost', () => {
  const cost = (t: number, window: number, groups = 2) => {
    const b = new GraphBuilder();
    const q = b.input('q', { dtype: 'bf16', shape: [1, 32, t, 128] });
    const k = b.input('k', { dtype: 'bf16', shape: [1, 32 / groups, t, 128] });
    const v = b.input('v', { dtype: 'bf16', shape: [1, 32 / groups, t, 128] });
    const o = b.op('fused_attention', [q, k, v], { scale: 0.1, softcap: 50, causal: true, window, groups });
    const g = b.build({ outputs: [{ name: 'o', node: o }] });
    const n = getNode(g, o);
    return nodeCost(n, g.nodes.slice(0, 3).map((x) => ({ dtype: x.type.dtype, shape: x.type.shape as number[] })), { dtype: 'bf16', shape: [1, 32, t, 128] });
  };
  test('bytes have no t×t term and shrink with the GQA group factor', () => {
    const c = cost(4096, 0);
    const qBytes = 32 * 4096 * 128 * 2;
    expect(c.bytes).toBe(qBytes * 2 + 2 * (qBytes / 2));
    expect(cost(8192, 0).bytes).toBe(2 * c.bytes); // linear in t
  });
  test('global layers count the dense t×s FLOPs; windowed layers only the band', () => {
    const dense = cost(8192, 0);
    // the two matmuls alone: 2 · 2 · t · s · d per head
    expect(dense.flops).toBeGreaterThan(4 * 32 * 8192 * 8192 * 128);
    const band = cost(8192, 4096);
    const frac = attentionPairs(8192, 8192, 4096, true) / (8192 * 8192);
    expect(frac).toBeCloseTo((4096 * 4097) / 2 / 8192 ** 2 + (4096 * 4096) / 8192 ** 2, 6);
    // (the windowed lowering has two more mask ops per score than the global one: 0.2% here)
    expect(Math.abs(band.flops / dense.flops - frac)).toBeLessThan(2e-3 * frac);
    // window ≥ t: the band is the causal triangle, about half the square
    expect(cost(4096, 4096).flops / cost(4096, 0).flops).toBeCloseTo(0.5, 2);
  });
});
