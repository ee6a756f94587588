/**
 * Segment replay (src/backends/tpu/replay.ts): a repeated layer is partitioned once and replayed for the others
 * when the partitioner would see the same state. It must change nothing: the programs, the plan and the layouts
 * are compared byte for byte against partitioning every layer (`replay: false`), on several models, meshes,
 * strategies and modes — and replay must actually happen there.
 */
import * as fs from 'fs';
import * as path from 'path';
import { compileModel } from '../../grammar';
import { runPipeline, resolvePipeline } from '../../src/passes';
import { compileTpu, getChip, makeMesh, parseStrategy, parseTopology, simulatePartitioned, simulateWhole, sourceNodes, buildTrainingStep, CostRecorder } from '../../src/backends/tpu';
import { SegmentMemo } from '../../src/backends/tpu/replay';
import { GraphBuilder } from '../../src/ir';
import { ROOT, TINY_CONFIG } from './helpers';

const six = { ...TINY_CONFIG, num_hidden_layers: 6, layer_types: [0, 1, 2, 3, 4, 5].map((i) => (i % 2 ? 'full_attention' : 'sliding_attention')) };
const small = { vocab: 64, d_model: 32, n_layers: 5, n_heads: 4 };
const models: [string, { config?: object; hparams?: Record<string, number> }][] = [
  ['gemma2.model', { config: six }],
  ['examples/gpt2.model', { hparams: { ...small, n_ctx: 16 } }],
  ['examples/llama2.model', { hparams: { ...small, d_ff: 48, n_kv_heads: 2, max_pos: 16 } }],
  ['examples/gemma1.model', { hparams: { ...small, d_ff: 48, n_kv_heads: 1, head_dim: 8, max_pos: 16 } }],
];
const meshes: [string, string, string][] = [
  ['data=2,model=4', '2x4', 'fsdp+tp'],
  ['model=4', '2x2', 'tp'],
  ['data=2,model=2', '2x2', 'dp+tp'],
  ['data=8', '2x4', 'fsdp'],
];

function graph(file: string, o: { config?: object; hparams?: Record<string, number> }, seq: number) {
  const r = compileModel(fs.readFileSync(path.join(ROOT, file), 'utf8'), file, { ...o, dims: { batch: 8, seq } } as Parameters<typeof compileModel>[2]);
  if (!r.graph) throw new Error(JSON.stringify(r.diagnostics));
  return runPipeline(r.graph, resolvePipeline({})).graph;
}

const cases = models.flatMap(([file, o]) => (['train', 'forward', 'decode'] as const).flatMap((mode) => meshes.map(([m, topo, strat]) => [file, mode, m, strat, o, topo] as const)));

describe('segment replay', () => {
  test.each(cases)('%s %s on %s (%s): same programs, plan and layouts as partitioning every layer', (file, mode, meshText, strat, o, topo) => {
    const seq = mode === 'decode' ? 1 : 12;
    const g = graph(file, o, seq);
    const mesh = makeMesh(parseTopology(getChip('v5e'), topo), meshText);
    const s = parseStrategy(strat, mesh);
    const po = { chip: 'v5e', mode, remat: 'layer-inputs' as const, ...(mode === 'decode' ? { context: 12 } : {}) };
    const run = (replay: boolean, layerFunctions = false) => compileTpu(g, mesh, s, po, { batch: 8, seq }, { emit: true, floatDtype: 'bf16', layerFunctions, replay });
    const a = run(false);
    const b = run(true);
    expect(a.partition.segments.replayed).toBe(0);
    expect(b.partition.segments.replayed).toBeGreaterThan(0);
    expect(b.programs!.partitionedMlir).toBe(a.programs!.partitionedMlir);
    expect(b.programs!.partitionedHlo).toBe(a.programs!.partitionedHlo);
    // With functions too (a replay taken as one block joins its recording's function without being compared).
    expect(run(true, true).programs!.partitionedMlir).toBe(run(false, true).programs!.partitionedMlir);
    expect(JSON.stringify(b.plan)).toBe(JSON.stringify(a.plan));
    expect([...b.partition.paramSpecs]).toEqual([...a.partition.paramSpecs]);
    expect([...b.partition.inputSpecs]).toEqual([...a.partition.inputSpecs]);
    expect(b.partition.outputs.map((x) => x.spec)).toEqual(a.partition.outputs.map((x) => x.spec));
  });

  test('a replayed layer is taken as one block by the cost recorder and the outliner (and by the recorder alone)', () => {
    const mesh = makeMesh(parseTopology(getChip('v5e'), '2x4'), 'data=2,model=4');
    const s = parseStrategy('fsdp+tp', mesh);
    const po = { chip: 'v5e', mode: 'train' as const, remat: 'layer-inputs' as const };
    for (const emit of [true, false]) {
      const c = compileTpu(graph('gemma2.model', { config: six }, 12), mesh, s, po, { batch: 8, seq: 12 }, { emit, floatDtype: 'bf16' });
      expect(c.partition.segments.blocks).toBeGreaterThan(0);
      expect(c.partition.segments.blocks).toBeLessThanOrEqual(c.partition.segments.replayed);
    }
  });

  test('a layer that computes the same as a recorded one under other sub-scopes keeps its own locations (no block)', () => {
    // Layer 4's MLP is scoped `ffn` instead of `mlp`: the same computation, located elsewhere, so not the same function.
    const g0 = graph('gemma2.model', { config: six }, 12);
    const ren = (x: string) => x.replace(/^model\.layers\.4\.mlp/, 'model.layers.4.ffn');
    const g = { ...g0, nodes: g0.nodes.map((n) => ({ ...n, scope: ren(n.scope) })), taps: Object.fromEntries(Object.entries(g0.taps).map(([k, v]) => [ren(k), v])) };
    expect(g.nodes.some((n) => n.scope.startsWith('model.layers.4.ffn'))).toBe(true);
    const mesh = makeMesh(parseTopology(getChip('v5e'), '2x4'), 'data=2,model=4');
    const s = parseStrategy('fsdp+tp', mesh);
    const run = (replay: boolean) => compileTpu(g, mesh, s, { chip: 'v5e', mode: 'train', remat: 'layer-inputs' }, { batch: 8, seq: 12 }, { emit: true, floatDtype: 'bf16', replay });
    const a = run(false);
    const b = run(true);
    expect(b.partition.segments.blocks).toBeGreaterThan(0);
    expect(b.programs!.partitionedMlir).toBe(a.programs!.partitionedMlir);
    expect(b.programs!.partitionedMlir).toContain('model.layers.4.ffn');
  });

  test("the cost recorder repeats a block only with inputs of the block's types and aliasing", () => {
    const rec = new CostRecorder();
    const f32 = { dtype: 'f32' as const, shape: [4] };
    const [x, y] = [rec.arg(f32, { name: 'x' }), rec.arg(f32, { name: 'y' })];
    const z = rec.arg({ dtype: 'f32', shape: [8] }, { name: 'z' });
    const mark = rec.blockStart();
    const v = rec.binary('add', x, y);
    rec.unary('exponential', v);
    const block = rec.makeBlock(mark, [x, y], { pos: Int32Array.from([0, 1]), origins: [{ id: 7, op: 'add', scope: 'l.0' }, { id: 8, op: 'exp', scope: 'l.0' }], types: [f32, f32] });
    expect(block).toBeDefined();
    expect(rec.makeBlock(mark, [x], { pos: Int32Array.from([0, 1]), origins: [undefined, undefined], types: [f32, f32] })).toBeUndefined(); // reads y
    expect(rec.canRepeatBlock(block, [x, z])).toBe(false); // another type
    expect(rec.canRepeatBlock(block, [x, x])).toBe(false); // one value for two inputs
    expect(rec.canRepeatBlock(block, [y, x])).toBe(true);
    const n = rec.instrs.length;
    const value = rec.repeatBlock(block, [y, x], 'l.1', (pos) => ({ id: 20 + pos, op: 'x', scope: 'l.1' }));
    expect(rec.instrs.length).toBe(n + 2);
    expect(rec.instrs.at(n)).toMatchObject({ opcode: 'add', node: 20, operands: [1, 0] });
    expect(rec.instrs.at(n + 1)).toMatchObject({ opcode: 'exponential', node: 21, operands: [n], transcendentals: 4 });
    expect(value(1).type).toEqual(f32);
  });

  test('the replayed per-device training step computes what the whole step computes (SPMD simulator, every output)', () => {
    const g = graph('gemma2.model', { config: six }, 6);
    const step = buildTrainingStep(g, 'layer-inputs');
    const mesh = makeMesh(parseTopology(getChip('v5e'), '2x4'), 'data=2,model=4');
    const policy = parseStrategy('fsdp+tp', mesh).policy;
    let seed = 7;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648 - 0.5) * 0.2;
    const inputs = new Map<string, Float64Array>();
    for (const n of sourceNodes(step.graph)) {
      const shape = n.type.shape as number[];
      const size = shape.reduce((x, y) => x * y, 1);
      const name = String(n.attrs.name);
      const data = new Float64Array(size);
      for (let i = 0; i < size; i++) {
        data[i] = n.type.dtype === 'i32' ? (name === 'positions' ? i % 6 : (i * 7) % 60) : name === 'step' ? 1 : name === 'lr' ? 1e-3 : name.startsWith('adam.v.') ? 1e-6 + Math.abs(rand()) * 1e-5 : rand();
      }
      inputs.set(name, data);
    }
    const whole = simulateWhole(step.graph, inputs).outputs;
    const part = simulatePartitioned(step.graph, mesh, policy, inputs, { env: {}, backwardFrom: step.forwardEnd, replay: true });
    expect(part.segments.replayed).toBeGreaterThan(0);
    for (const [name, w] of whole) {
      const p = part.outputs.get(name)!;
      let err = 0;
      let scale = 1e-12;
      for (let i = 0; i < w.length; i++) {
        err = Math.max(err, Math.abs(p[i] - w[i]));
        scale = Math.max(scale, Math.abs(w[i]));
      }
      expect([name, err / scale < 1e-9]).toEqual([name, true]);
    }
  });

  test('the starting state matters: replaying by structure alone gives a different program (so the check above can fail)', () => {
    const g = graph('gemma2.model', { config: six }, 12);
    const mesh = makeMesh(parseTopology(getChip('v5e'), '2x4'), 'data=2,model=4');
    const s = parseStrategy('fsdp+tp', mesh);
    const run = (replay: boolean) => compileTpu(g, mesh, s, { chip: 'v5e', mode: 'train' }, { batch: 8, seq: 12 }, { emit: true, layerFunctions: false, replay }).programs!.partitionedMlir;
    const right = run(false);
    expect(run(true)).toBe(right);
    SegmentMemo.ignoreStateForTests = true;
    try {
      expect(run(true)).not.toBe(right);
    } finally {
      SegmentMemo.ignoreStateForTests = false;
    }
  });
});

/** A hand-built forward on `model=8` (tensor parallel), partitioned with and without replay; replay must happen. */
function tpForwardBothWays(g: ReturnType<GraphBuilder['build']>, batch: number) {
  const mesh = makeMesh(parseTopology(getChip('v5e'), '2x4'), 'model=8');
  const s = parseStrategy('tp', mesh);
  const run = (replay: boolean) => compileTpu(g, mesh, s, { chip: 'v5e', mode: 'forward' }, { batch, seq: 1 }, { emit: true, layerFunctions: false, replay });
  const off = run(false);
  const on = run(true);
  expect(on.partition.segments.replayed).toBeGreaterThan(0);
  return { off, on };
}

describe('segment replay: values of inner nodes', () => {
  test("a replayed layer's inner node reports its own state even when the recorded layer's twin was used later", () => {
    // Five identical tensor-parallel layers; layer 1's inner matmul is also read after the layers, which later
    // resolves its pending sum — the replayed layers' inner matmuls must still report theirs as pending.
    const b = new GraphBuilder('synth');
    const [D, H, B] = [16, 32, 8];
    let x = b.input('x', { dtype: 'f32', shape: [B, D] });
    let aux = -1;
    for (let i = 0; i < 5; i++) {
      b.within(`model.layers.${i}`, () => {
        const A = b.param(`model.layers.${i}.A`, { dtype: 'f32', shape: [D, H] });
        const W = b.param(`model.layers.${i}.B`, { dtype: 'f32', shape: [H, D] });
        const v = b.op('matmul', [b.op('matmul', [x, A]), W]);
        const t = b.op('mul', [b.op('mul', [v, b.constant(2)]), b.constant(3)]);
        if (i === 1) aux = v;
        x = b.op('add', [x, t]);
      });
    }
    const C = b.param('head.C', { dtype: 'f32', shape: [D, D] });
    const out = b.within('head', () => b.op('add', [aux, b.op('matmul', [x, C])]));
    const g = b.build({ outputs: [{ name: 'y', node: x }, { name: 'aux', node: out }] });
    const { off, on } = tpForwardBothWays(g, B);
    expect(on.programs!.partitionedMlir).toBe(off.programs!.partitionedMlir);
    const state = (c: typeof on) => g.nodes.map((n) => {
      const v = c.partition.values.get(n.id);
      return v ? `${n.id} ${JSON.stringify(c.partition.partitioner.spec(v))} ${JSON.stringify(c.partition.partitioner.partialOf(v))}` : `${n.id} -`;
    });
    expect(state(on)).toEqual(state(off));
  });
});

describe('segment replay: state the key must include', () => {
  test('an input that follows another parameter than in the recorded segment (optimizer-state layout) is not replayed from it', () => {
    // Layer 3 reads `st.head.Z`, laid out like `head.Z` (used only after the layers); the others read state laid out
    // like their own layer's parameter. Before the key named the followed parameter, layer 3 replayed layer 1 and
    // was placed like its own layer's weight.
    const [D, B] = [16, 8];
    const b = new GraphBuilder('synth');
    let x = b.input('x', { dtype: 'f32', shape: [B, D] });
    const Z = b.param('head.Z', { dtype: 'f32', shape: [D, D] });
    for (let i = 0; i < 5; i++) {
      b.within(`model.layers.${i}`, () => {
        const W = b.param(`model.layers.${i}.W`, { dtype: 'f32', shape: [D, D] });
        const st = b.input(i === 3 ? 'st.head.Z' : `st.model.layers.${i}.W`, { dtype: 'f32', shape: [D, D] });
        const h = b.op('matmul', [x, W]);
        x = b.op('add', [x, b.op('matmul', [h, b.op('add', [st, W])])]);
      });
    }
    const g = b.build({ outputs: [{ name: 'y', node: b.within('head', () => b.op('matmul', [x, Z])) }] });
    const { off, on } = tpForwardBothWays(g, B);
    expect([...on.partition.inputSpecs]).toEqual([...off.partition.inputSpecs]);
    expect(on.programs!.partitionedMlir).toBe(off.programs!.partitionedMlir);
  });
});
