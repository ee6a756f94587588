/**
 * The decode-step program (`compile --mode decode`): one token against KV-cache buffers that are arguments and
 * results. Checked against the Hugging Face logits of the tiny Gemma 2 (sliding window 4 over 12 positions, so
 * the ring buffers of the local layers wrap): the step is run token by token, feeding back its own caches —
 * through the XLA lowering (the SPMD simulator, whole and per device on a 2×2 mesh) and on the CPU backend.
 */
import * as fs from 'fs';
import * as path from 'path';
import { Graph, GraphBuilder, nodeCost } from '../../src/ir';
import { openCheckpoint, readTensor } from '../../src/checkpoint';
import { decodeStep, getChip, makeMesh, parseStrategy, parseTopology, simulatePartitioned, simulateWhole, sourceNodes, partitionForCost, emitPrograms } from '../../src/backends/tpu';
import { execute, initCpuBackend, tf } from '../../src/backends/cpu';
import { compileModel } from '../../grammar';
import { runPipeline, resolvePipeline } from '../../src/passes';
import { gemma2 } from '../cpu/model';

const fx = path.resolve(__dirname, '../fixtures/gemma2-tiny');
const ref = JSON.parse(fs.readFileSync(path.join(fx, 'reference.json'), 'utf8'));
const ids: number[][] = ref.input_ids;
const [B, T] = [ids.length, ids[0].length];
const V = 512;
const ck = openCheckpoint(path.join(fx, 'model.safetensors'));
const oneToken = gemma2(fx, { fused: true, dims: { batch: B, seq: 1 } });
const step = decodeStep(oneToken, { context: T });

const refRow = (t: number) => ids.flatMap((_, b) => ref.logits[b][t] as number[]);
const maxErr = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let e = 0;
  for (let i = 0; i < a.length; i++) e = Math.max(e, Math.abs(a[i] - b[i]));
  return e;
};

function feedsAt(g: Graph, t: number, caches: Map<string, ArrayLike<number>>): Map<string, ArrayLike<number>> {
  const f = new Map<string, ArrayLike<number>>();
  for (const n of sourceNodes(g)) {
    const name = String(n.attrs.name);
    const size = (n.type.shape as number[]).reduce((a, b) => a * b, 1);
    if (name === 'input_ids') f.set(name, ids.map((row) => row[t]));
    else if (name === 'positions') f.set(name, [t]);
    else if (name.startsWith('cache.')) f.set(name, caches.get(name) ?? new Float64Array(size));
    else f.set(name, readTensor(ck.tensors.get(name)!));
  }
  return f;
}

describe('decode step', () => {
  test('KV caches: one k and one v buffer per layer, ring buffers of `window` positions on local layers', () => {
    expect(step.caches.map((c) => [c.name, c.length, c.window])).toEqual(
      [0, 1, 2, 3].flatMap((i) => ['k', 'v'].map((x) => [`cache.model.layers.${i}.self_attn.${x}`, i % 2 === 0 ? 4 : T, i % 2 === 0 ? 4 : 0])),
    );
    const ins = step.graph.nodes.filter((n) => n.op === 'input').map((n) => `${n.attrs.name}:${n.type.shape.join('x')}`);
    expect(ins).toContain('cache.model.layers.0.self_attn.k:2x2x4x16');
    expect(ins).toContain('cache.model.layers.1.self_attn.v:2x2x12x16');
    expect(step.graph.outputs.map((o) => o.name)).toEqual(['logits', ...step.caches.map((c) => c.name)]);
    expect(step.graph.nodes.filter((n) => n.op === 'dynamic_update_slice')).toHaveLength(8);
    expect(step.graph.nodes.filter((n) => n.op === 'fused_attention').every((n) => n.inputs.length === 4 && !n.attrs.causal && n.attrs.window === 0)).toBe(true);
  });

  test('token by token through the XLA lowering: every position equals the Hugging Face logits (ring buffers wrap)', () => {
    let caches = new Map<string, ArrayLike<number>>();
    for (let t = 0; t < T; t++) {
      const r = simulateWhole(step.graph, feedsAt(step.graph, t, caches));
      expect(maxErr(r.outputs.get('logits')!, refRow(t))).toBeLessThan(2e-4);
      caches = new Map([...r.outputs].filter(([k]) => k.startsWith('cache.')));
    }
  });

  test('per device on data=2,model=2: caches take their keys\' layout (batch × KV heads), never move, and the logits match', () => {
    const m = makeMesh(parseTopology(getChip('v5e'), '2x2'), 'data=2,model=2');
    const policy = parseStrategy('dp+tp', m).policy;
    let caches = new Map<string, ArrayLike<number>>();
    const moved: string[] = [];
    for (let t = 0; t < 6; t++) {
      const run = simulatePartitioned(step.graph, m, policy, feedsAt(step.graph, t, caches), { env: {} }, undefined, (e) => {
        if (e.bytes >= 2 * 2 * 4 * 16 * 8) moved.push(`${e.kind} ${e.bytes}`);
      });
      if (t === 0) {
        expect(run.partitioner.decidedInputs.get('cache.model.layers.0.self_attn.k')).toEqual([['data'], ['model'], [], []]);
        expect(run.partitioner.decidedInputs.get('cache.model.layers.3.self_attn.v')).toEqual([['data'], ['model'], [], []]);
      }
      expect(maxErr(run.outputs.get('logits')!, refRow(t))).toBeLessThan(2e-4);
      caches = new Map([...run.outputs].filter(([k]) => k.startsWith('cache.')));
    }
    // The only large collective is the vocabulary-parallel LM head's; no cache-sized all-gather.
    expect(moved.filter((x) => !x.endsWith(String(B * V * 8)))).toEqual([]);
  });

  test('the CPU backend runs the same step (dynamic_update_slice on tfjs) to the same logits', async () => {
    await initCpuBackend('cpu');
    const params = new Map<string, tf.Tensor>();
    for (const n of step.graph.nodes) if (n.op === 'param') params.set(String(n.attrs.name), tf.tensor(readTensor(ck.tensors.get(String(n.attrs.name))!) as Float32Array, n.type.shape as number[]));
    let caches = new Map<string, tf.Tensor>();
    for (let t = 0; t < T; t++) {
      const feeds: Record<string, tf.Tensor> = { input_ids: tf.tensor2d(ids.map((r) => [r[t]]), [B, 1], 'int32'), positions: tf.tensor1d([t], 'int32') };
      for (const c of step.caches) feeds[c.name] = caches.get(c.name) ?? tf.zeros([B, 2, c.length, 16]);
      const r = execute(step.graph, feeds, params);
      expect(maxErr(r.outputs.logits.dataSync(), refRow(t))).toBeLessThan(1e-4);
      for (const t of Object.values(feeds)) t.dispose();
      r.outputs.logits.dispose();
      caches = new Map(step.caches.map((c) => [c.name, r.outputs[c.name]]));
    }
    for (const t of caches.values()) t.dispose();
    for (const t of params.values()) t.dispose();
  });

  test('emitted programs: dynamic_update_slice in both formats; the per-device cache is the local block', () => {
    const m = makeMesh(parseTopology(getChip('v5e'), '2x2'), 'data=2,model=2');
    const p = emitPrograms(step.graph, m, parseStrategy('dp+tp', m).policy, { floatDtype: 'bf16' });
    expect(p.wholeMlir).toMatch(/"stablehlo\.dynamic_update_slice"\(%\w+, %\w+, %\w+, %\w+, %\w+, %\w+\) : \(tensor<2x2x4x16xbf16>, tensor<2x2x1x16xbf16>, tensor<i32>, tensor<i32>, tensor<i32>, tensor<i32>\) -> tensor<2x2x4x16xbf16>/);
    expect(p.partitionedHlo).toMatch(/bf16\[1,1,12,16\]\{?[^ ]*\s*dynamic-update-slice\(/);
    expect(p.partitionedMlir).toContain('jax.arg_info = "cache.model.layers.1.self_attn.k", mhlo.sharding = "{manual}"');
    expect(p.wholeMlir).toMatch(/jax\.result_info = "cache\.model\.layers\.1\.self_attn\.k", mhlo\.sharding = "\{devices=\[2,2,1,1\]/);
    // Deterministic byte for byte: the same step emitted again is the same text.
    const again = emitPrograms(decodeStep(oneToken, { context: T }).graph, m, parseStrategy('dp+tp', m).policy, { floatDtype: 'bf16' });
    expect([again.wholeMlir, again.wholeHlo, again.partitionedMlir, again.partitionedHlo]).toEqual([p.wholeMlir, p.wholeHlo, p.partitionedMlir, p.partitionedHlo]);
    // The cost recorder counts the in-place update (2 × update bytes), not the cache.
    const pc = partitionForCost(step.graph, m, parseStrategy('dp+tp', m).policy);
    const dus = pc.recorder.instrs.toArray().filter((i) => i.opcode === 'dynamic-update-slice');
    expect(dus).toHaveLength(8);
  });

  test('dynamic_update_slice: type rule, XLA clamping on the CPU, in-place cost', async () => {
    await initCpuBackend('cpu');
    const b = new GraphBuilder();
    const x = b.input('x', { dtype: 'f32', shape: [2, 5, 3] });
    const u = b.input('u', { dtype: 'f32', shape: [2, 2, 3] });
    const i = b.input('i', { dtype: 'i32', shape: [] });
    const y = b.op('dynamic_update_slice', [x, u, i], { axis: 1 });
    expect(b.type(y)).toEqual({ dtype: 'f32', shape: [2, 5, 3] });
    expect(() => b.op('dynamic_update_slice', [x, u, x], { axis: 1 })).toThrow(/integer scalar/);
    expect(() => b.op('dynamic_update_slice', [x, u, i], { axis: 0 })).toThrow(/except along axis 0/);
    expect(() => b.op('dynamic_update_slice', [u, x, i], { axis: 1 })).toThrow(/longer than/);
    const g = b.build({ outputs: [{ name: 'y', node: y }] });
    const run = (at: number) => {
      const feeds = { x: tf.zeros([2, 5, 3]), u: tf.ones([2, 2, 3]), i: tf.scalar(at, 'int32') };
      const r = execute(g, feeds, new Map());
      const rows = Array.from((r.outputs.y.arraySync() as number[][][])[1], (row) => row[0]);
      r.outputs.y.dispose();
      Object.values(feeds).forEach((t) => t.dispose());
      return rows;
    };
    expect(run(1)).toEqual([0, 1, 1, 0, 0]);
    expect(run(9)).toEqual([0, 0, 0, 1, 1]); // clamped to 5 − 2, as XLA does
    expect(run(-3)).toEqual([1, 1, 0, 0, 0]);
    const n = g.nodes.find((m) => m.id === y)!;
    expect(nodeCost(n, [{ dtype: 'f32', shape: [2, 5, 3] }, { dtype: 'f32', shape: [2, 2, 3] }, { dtype: 'i32', shape: [] }], { dtype: 'f32', shape: [2, 5, 3] })).toEqual({ flops: 0, transcendentals: 0, bytes: 2 * 12 * 4 + 4 });
  });

  test('refuses graphs it cannot turn into a decode step', () => {
    expect(() => decodeStep(gemma2(fx, { dims: { batch: 1, seq: 1 } }), { context: 8 })).toThrow(/no fused_attention/);
    expect(() => decodeStep(gemma2(fx, { fused: true, dims: { batch: 1, seq: 3 } }), { context: 8 })).toThrow(/one integer position|seq = 1/);
    expect(() => decodeStep(oneToken, { context: 0 })).toThrow(/positive integer/);
  });
});

test('a model without attention has no KV cache to keep: the decode step says so and points to --mode forward', () => {
  const b = new GraphBuilder('mlp');
  const x = b.input('x', { dtype: 'f32', shape: [2, 1, 4] });
  const w = b.param('w', { dtype: 'f32', shape: [4, 4] });
  const g = b.build({ outputs: [{ name: 'y', node: b.op('matmul', [x, w]) }] });
  expect(() => decodeStep(g, { context: 8 })).toThrow('decode: the model has no attention, so a token depends on no earlier one and there is no KV cache to keep: plan it with --mode forward');
});

test('a block called again under the same label (shared weights) gets a cache per call', () => {
  const src = `model shared
hparams { vocab = 64  d_model = 16  n_heads = 2  head_dim = 8  max_pos = 32 }
dim batch, seq <= max_pos
block layer(x, positions) {
  h = norm: rmsnorm(x, 1e-6)
  return x + self_attn: attention(h, positions, heads = n_heads, kv_heads = n_heads, head_dim = head_dim, scale = 0.35)
}
forward(input_ids: i32[batch, seq], positions: i32[seq] = arange(seq)) {
  embed = param embed.weight[vocab, d_model]
  x = gather(embed, input_ids)
  for i in 0 .. 3 { x = shared: layer(x, positions) }
  return logits = linear(x, embed)
}
`;
  const r = compileModel(src, 'shared.model', { dims: { batch: 2, seq: 1 } });
  if (!r.graph) throw new Error(JSON.stringify(r.diagnostics));
  const d = decodeStep(runPipeline(r.graph, resolvePipeline({})).graph, { context: 8 });
  expect(d.caches.map((c) => c.name)).toEqual(['cache.shared.self_attn.k', 'cache.shared.self_attn.v', 'cache.shared.self_attn#2.k', 'cache.shared.self_attn#2.v', 'cache.shared.self_attn#3.k', 'cache.shared.self_attn#3.v']);
  expect(new Set(sourceNodes(d.graph).map((n) => n.attrs.name)).size).toBe(sourceNodes(d.graph).length);
});
