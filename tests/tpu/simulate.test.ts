/**
 * The per-device programs executed: the SPMD simulator runs the partitioner's per-device program on every device
 * of a mesh (real replica groups, partition ids, dynamic slices) and compares it with the whole program, node by
 * node. This is the check that found the per-device training-step bug on model=4 (a pending partial sum over
 * `model` multiplied by a value split over `model` stayed pending: every gradient was wrong, the loss right).
 */
import * as fs from 'fs';
import * as path from 'path';
import { Graph, GraphBuilder } from '../../src/ir';
import { compileModel } from '../../grammar';
import { openCheckpoint, readTensor } from '../../src/checkpoint';
import { runPipeline, resolvePipeline } from '../../src/passes';
import { shiftLabels } from '../../src/train/loss';
import {
  CollectiveEvent, Feeds, buildTrainingStep, checkPartition, getChip, makeMesh, parseStrategy, parseTopology, simulatePartitioned, simulateWhole, sourceNodes,
  SpmdSimulator, localBlock, assemble, partitionForCost,
} from '../../src/backends/tpu';

const ROOT = path.resolve(__dirname, '../..');
const fx = path.join(ROOT, 'tests/fixtures/gemma2-tiny');
const config = JSON.parse(fs.readFileSync(path.join(fx, 'config.json'), 'utf8'));
const ref = JSON.parse(fs.readFileSync(path.join(fx, 'reference.json'), 'utf8'));
const [B, T] = [ref.input_ids.length as number, ref.input_ids[0].length as number];
// v5e slices (2x2, 2x4); two devices are a pair of H100s (v5e has no 2-chip slice).
const mesh = (spec: string, topo: string) => makeMesh(parseTopology(getChip(topo.includes('x') ? 'v5e' : 'h100'), topo), spec);

const raw = compileModel(fs.readFileSync(path.join(ROOT, 'gemma2.model'), 'utf8'), 'gemma2.model', { config, dims: { batch: B, seq: T } }).graph!;
const ck = openCheckpoint(path.join(fx, 'model.safetensors'));

function feedsFor(g: Graph, params = true, masters = true): Feeds {
  let seed = 12345;
  const rand = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  const ids = Int32Array.from(ref.input_ids.flat() as number[]);
  const feeds = new Map<string, ArrayLike<number>>();
  for (const n of sourceNodes(g)) {
    const name = String(n.attrs.name);
    const size = (n.type.shape as number[]).reduce((a, b) => a * b, 1);
    if (name === 'input_ids') feeds.set(name, ids);
    else if (name === 'positions') feeds.set(name, Int32Array.from([...Array(T).keys()]));
    else if (name === 'labels') feeds.set(name, shiftLabels(ids, B, T));
    else if (name === 'step') feeds.set(name, [3]);
    else if (name === 'lr') feeds.set(name, [1e-3]);
    else if (name.startsWith('adam.m.')) feeds.set(name, Float64Array.from({ length: size }, () => (rand() - 0.5) * 2e-3));
    else if (name.startsWith('adam.v.')) feeds.set(name, Float64Array.from({ length: size }, () => 1e-6 + rand() * 1e-6));
    // fp32 master weights: near the weights but not equal, so an update that read the weights instead would show
    else if (name.startsWith('master.')) {
      if (masters) feeds.set(name, Float64Array.from(readTensor(ck.tensors.get(name.slice('master.'.length))!), (x) => x * (1 + (rand() - 0.5) * 1e-3)));
    } else if (params) feeds.set(name, readTensor(ck.tensors.get(name)!));
  }
  return feeds;
}

const maxErr = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let e = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i] - b[i];
    if (d > e) e = d;
    else if (-d > e) e = -d;
  }
  return e;
};

describe('the SPMD simulator', () => {
  test('runs the whole tiny Gemma 2 program (every op\'s XLA lowering) to the Hugging Face logits', () => {
    const r = simulateWhole(raw, feedsFor(raw));
    expect(maxErr(r.outputs.get('logits')!, (ref.logits as number[][][]).flat(2))).toBeLessThan(2e-4);
  });

  test('collectives follow the replica groups: all-gather / reduce-scatter / all-to-all agree with local slices', () => {
    const m = mesh('data=2,model=4', '2x4');
    const x = Float64Array.from({ length: 8 * 12 }, (_, i) => i);
    const spec = [['data'], ['model']];
    const sim = new SpmdSimulator(8, (_i, _t, p) => localBlock(m, x, [8, 12], spec, p).data);
    const v = sim.arg({ dtype: 'f32', shape: [4, 3] }, { name: 'x' });
    const groups = (axes: string[]) => ({ axes, groups: require('../../src/backends/tpu').replicaGroups(m, axes), iota: '' });
    const g = sim.allGather(v, 1, groups(['model']));
    expect(assemble(m, (g as never as { data: Float64Array[] }).data, [8, 12], [['data'], []])).toEqual(x);
    // Sum over model of the replicated [4,12] block, scattered back onto dim 1: 4× the block device p holds.
    const rs = sim.reduceScatter(g, 1, groups(['model']));
    expect(assemble(m, (rs as never as { data: Float64Array[] }).data, [8, 12], spec)).toEqual(x.map((a) => 4 * a));
    const a2a = sim.allToAll(v, 0, 1, groups(['data']));
    // Rows split in 2 chunks, chunk j sent to data index j, concatenated along columns in member order:
    // device (j, k) holds [x[2j:2j+2, 3k:3k+3] | x[4+2j:4+2j+2, 3k:3k+3]].
    expect(a2a.type.shape).toEqual([2, 6]);
    const at = (r: number, c: number) => x[r * 12 + c];
    for (let j = 0; j < 2; j++) {
      for (let k = 0; k < 4; k++) {
        const want = [0, 1].flatMap((r) => [0, 1].flatMap((i) => [0, 1, 2].map((c) => at(4 * i + 2 * j + r, 3 * k + c))));
        expect(Array.from((a2a as never as { data: Float64Array[] }).data[j * 4 + k])).toEqual(want);
      }
    }
  });
});

describe('the per-device training step, executed', () => {
  const fg = runPipeline(raw, resolvePipeline({})).graph;
  const step = buildTrainingStep(fg, 'layer-inputs');
  const feeds = feedsFor(step.graph);
  const whole = simulateWhole(step.graph, feeds);

  test('the whole step\'s loss equals Hugging Face\'s', () => {
    expect(Math.abs(whole.outputs.get('loss')![0] - ref.train.loss)).toBeLessThan(1e-5);
  });

  test.each([
    ['model=4', '2x2', []],
    ['model=2', '2', ['model']],
  ])('%s: K/V projections column-split, their heads dim split only when the 2 K/V heads divide', (meshText, topo, heads) => {
    const m = mesh(meshText, topo);
    const { result } = partitionForCost(step.graph, m, parseStrategy('tp', m).policy, 4, step.forwardEnd);
    for (const proj of ['k_proj', 'v_proj']) {
      const w = step.graph.nodes.find((n) => n.op === 'param' && n.attrs.name === `model.layers.0.self_attn.${proj}.weight`)!;
      expect(result.paramSpecs.get(String(w.attrs.name))).toEqual([['model'], []]);
      const mm = step.graph.nodes.find((n) => n.op === 'matmul' && n.inputs.includes(w.id))!;
      const heads4 = step.graph.nodes.find((n) => n.op === 'reshape' && n.inputs[0] === mm.id)!;
      expect(heads4.type.shape).toEqual([B, T, 2, 16]);
      expect(result.partitioner.spec(result.values.get(heads4.id)!)).toEqual([[], [], heads, []]);
    }
  });

  // model=4 and data=2,model=4 were wrong before (more model shards than the tiny model's 2 K/V heads).
  test.each([
    ['model=4', '2x2', 'tp'],
    ['data=2,model=4', '2x4', 'fsdp+tp'],
    ['data=2,model=2', '2x2', 'fsdp+tp'],
    ['model=8', '2x4', 'tp'],
  ])('%s (%s, %s): every output and every node equals the whole program', (meshText, topo, strat) => {
    const m = mesh(meshText, topo);
    const run = simulatePartitioned(step.graph, m, parseStrategy(strat, m).policy, feeds, { env: {}, backwardFrom: step.forwardEnd });
    for (const [name, want] of whole.outputs) {
      const scale = want.reduce((m, v) => (v > m ? v : -v > m ? -v : m), 1);
      expect([name, maxErr(run.outputs.get(name)!, want) / scale < 1e-9]).toEqual([name, true]);
    }
    expect(checkPartition(step.graph, m, run, whole.values)).toEqual([]);
    // The embedding gradient (segment_sum: a one-hot matmul) is split over the model axis (the vocabulary when
    // nothing else uses it, as the vocabulary-parallel table is) — not computed whole on every chip.
    const seg = step.graph.nodes.find((n) => n.op === 'segment_sum')!;
    expect(run.partitioner.spec(run.values.get(seg.id)!).flat()).toContain('model');
    // The invariant that was broken: no value keeps a pending sum over an axis that also splits it.
    for (const v of run.values.values()) {
      const i = run.partitioner.info(v);
      if (i.partial && !i.bcast) expect(i.spec.flat().filter((a) => i.partial!.axes.includes(a))).toEqual([]);
    }
  });
});

test('27B\'s head structure (32 query heads, 16 K/V heads) on data=2,model=8: the per-device step is exact', () => {
  const cfg = { ...config, num_attention_heads: 32, num_key_value_heads: 16, head_dim: 4, query_pre_attn_scalar: 4, num_hidden_layers: 2, layer_types: ['sliding_attention', 'full_attention'] };
  const g0 = compileModel(fs.readFileSync(path.join(ROOT, 'gemma2.model'), 'utf8'), 'gemma2.model', { config: cfg, dims: { batch: B, seq: T } }).graph!;
  const st = buildTrainingStep(runPipeline(g0, resolvePipeline({})).graph, 'layer-inputs');
  let seed = 7;
  const rand = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  const feeds = new Map(feedsFor(st.graph, false, false));
  for (const n of sourceNodes(st.graph)) {
    if (n.op === 'param' || String(n.attrs.name).startsWith('master.')) feeds.set(String(n.attrs.name), Float64Array.from({ length: (n.type.shape as number[]).reduce((a, b) => a * b, 1) }, () => (rand() - 0.5) * 0.2));
  }
  const m = mesh('data=2,model=8', '4x4');
  const whole = simulateWhole(st.graph, feeds);
  const run = simulatePartitioned(st.graph, m, parseStrategy('fsdp+tp', m).policy, feeds, { env: {}, backwardFrom: st.forwardEnd });
  expect(run.partitioner.spec(run.values.get(st.graph.nodes.find((n) => n.op === 'param' && String(n.attrs.name).endsWith('k_proj.weight'))!.id)!)).toEqual([['model'], ['data']]);
  expect(checkPartition(st.graph, m, run, whole.values)).toEqual([]);
});

test('sums pending over different axes join (scaled by 1/k): the grad norm is one all-reduce, not one per parameter, and stays exact', () => {
  const b = new GraphBuilder('norm');
  // a [8,4] split over data on dim 0 and model on dim 1; c [8,4] split over data only: Σa² + Σc² pends over
  // {data, model} and {data}; c's sum is identical across model, so c²/2 joins a's sum.
  const a = b.input('a', { dtype: 'f32', shape: [8, 4] });
  const c = b.input('c', { dtype: 'f32', shape: [8, 4] });
  const sa = b.op('reduce', [b.op('mul', [a, a])], { kind: 'sum', axes: [0, 1] });
  const sc = b.op('reduce', [b.op('mul', [c, c])], { kind: 'sum', axes: [0, 1] });
  const norm = b.op('sqrt', [b.op('add', [sc, sa])]);
  const g = b.build({ outputs: [{ name: 'norm', node: norm }] });
  const m = mesh('data=2,model=2', '2x2');
  const xa = Float64Array.from({ length: 32 }, (_, i) => Math.sin(i) * 3);
  const xc = Float64Array.from({ length: 32 }, (_, i) => Math.cos(i));
  const feeds = new Map<string, ArrayLike<number>>([['a', xa], ['c', xc]]);
  const events: CollectiveEvent[] = [];
  const specs = new Map([['a', [['data'], ['model']]], ['c', [['data'], []]]]);
  const run = simulatePartitioned(g, m, parseStrategy('fsdp+tp', m).policy, feeds, { env: {} }, specs, (e) => events.push(e));
  expect(events.map((e) => `${e.kind} ${e.axes.join(',')}`)).toEqual(['all-reduce data,model']);
  const want = Math.sqrt([...xa, ...xc].reduce((s, v) => s + v * v, 0));
  expect(Math.abs(run.outputs.get('norm')![0] - want)).toBeLessThan(1e-12 * want);
  expect(checkPartition(g, m, run, simulateWhole(g, feeds).values)).toEqual([]);
});

describe('a pending partial sum meeting a split operand', () => {
  // x[4,8] split over model on the contraction, y[8,6] likewise: x·y is a partial sum over model;
  // multiplied by z[4,6] split over model on dim 1, the sum must be taken first (a reduce-scatter onto dim 1).
  const b = new GraphBuilder('pm');
  const x = b.input('x', { dtype: 'f32', shape: [4, 8] });
  const y = b.input('y', { dtype: 'f32', shape: [8, 8] });
  const z = b.input('z', { dtype: 'f32', shape: [4, 8] });
  const xy = b.op('matmul', [x, y]);
  const out = b.op('mul', [xy, z]);
  const g = b.build({ outputs: [{ name: 'out', node: out }] });
  const rnd = (n: number, k: number) => Float64Array.from({ length: n }, (_, i) => Math.sin(i * k + 1));
  const feeds = new Map([
    ['x', rnd(32, 0.7)],
    ['y', rnd(64, 1.3)],
    ['z', rnd(32, 2.1)],
  ]);

  test.each([['model=2', '2'], ['model=4', '2x2'], ['data=2,model=2', '2x2']])('%s: reduce-scattered, exact', (meshText, topo) => {
    const m = mesh(meshText, topo);
    const specs = new Map([
      ['x', [[], ['model']]],
      ['y', [['model'], []]],
      ['z', [[], ['model']]],
    ]);
    const events: CollectiveEvent[] = [];
    const run = simulatePartitioned(g, m, parseStrategy(meshText.includes('data') ? 'dp+tp' : 'tp', m).policy, feeds, { env: {} }, specs, (e) => events.push(e));
    const whole = simulateWhole(g, feeds);
    expect(maxErr(run.outputs.get('out')!, whole.outputs.get('out')!)).toBeLessThan(1e-12);
    expect(events.map((e) => [e.kind, e.axes])).toEqual([['reduce-scatter', ['model']]]);
    expect(run.partitioner.spec(run.values.get(out)!)).toEqual([[], ['model']]);
  });
});
