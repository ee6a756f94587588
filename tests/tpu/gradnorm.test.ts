/**
 * The global gradient norm (AdamW's clipping: the sum of every gradient's squared sum) costs one all-reduce.
 * Each parameter's squared sum stays a pending partial sum, and sums pending over different axes join
 * (`widening` in partition.ts). GPT-2 used to pay one scalar all-reduce per parameter (149 on GPT-2 small):
 * its position-embedding gradient (wpe, a segment_sum) arrives already all-reduced, so its squared sum is not
 * pending at all, and adding it to the first pending term all-reduced that one — and every later term, one by
 * one, since the running total was then never pending again.
 */
import * as fs from 'fs';
import * as path from 'path';
import { compileModel } from '../../grammar';
import { runPipeline, resolvePipeline } from '../../src/passes';
import {
  buildTrainingStep, checkPartition, getChip, makeMesh, parseStrategy, parseTopology, partitionForCost, simulatePartitioned, simulateWhole, sourceNodes,
} from '../../src/backends/tpu';

const ROOT = path.resolve(__dirname, '../..');
const dims = { batch: 8, seq: 16 };
const hparams = { n_layers: 2, d_model: 64, n_heads: 4, vocab: 128, n_ctx: 64 };
const r = compileModel(fs.readFileSync(path.join(ROOT, 'examples/gpt2.model'), 'utf8'), 'gpt2.model', { hparams, dims });
if (!r.graph) throw new Error(JSON.stringify(r.diagnostics));
const step = buildTrainingStep(runPipeline(r.graph, resolvePipeline({})).graph, 'layer-inputs');
const g = step.graph;
const scopeOf = new Map(g.nodes.map((n) => [n.id, n.scope]));
const inOptimizer = (id: number) => {
  const s = scopeOf.get(id) ?? '';
  return s === 'optimizer' || s.startsWith('optimizer.');
};
const mesh = (spec: string, topo: string) => makeMesh(parseTopology(getChip('v5e'), topo), spec);
const params = g.nodes.filter((n) => n.op === 'param');

function optimizerAllReduces(meshText: string, topo: string, strategy?: string) {
  const m = mesh(meshText, topo);
  const p = partitionForCost(g, m, parseStrategy(strategy, m).policy, 2, step.forwardEnd);
  return p.events.filter((e) => e.kind === 'all-reduce' && inOptimizer(e.node));
}

describe('GPT-2\'s gradient norm', () => {
  test('the model has what made it differ from Gemma: biases, learned positions, a tied embedding', () => {
    expect(params.some((n) => String(n.attrs.name) === 'transformer.wpe.weight')).toBe(true);
    expect(params.filter((n) => n.type.shape.length === 1).length).toBeGreaterThan(10);
    expect(g.nodes.some((n) => n.op === 'segment_sum')).toBe(true);
  });

  test.each([
    ['data=8', '2x4'],
    ['data=4', '2x2'],
  ])('%s (fsdp): one scalar all-reduce in the optimizer, not one per parameter', (meshText, topo) => {
    const ars = optimizerAllReduces(meshText, topo);
    expect(ars.map((e) => [e.axes.join(','), e.bytes])).toEqual([['data', 4]]);
  });

  test('data=2,model=4 (fsdp+tp): squared sums pending over data, model or both still join into one', () => {
    // (Bias gradients pending over model are all-reduced where the optimizer squares them: vectors, not the norm.)
    const scalars = optimizerAllReduces('data=2,model=4', '2x4').filter((e) => e.bytes === 4);
    expect(scalars.map((e) => e.axes.join(','))).toEqual(['data,model']);
  });

  test.each([
    ['data=8', '2x4', 'fsdp'],
    ['data=4', '2x2', 'dp'],
    ['data=2,model=4', '2x4', 'fsdp+tp'],
  ])('%s on %s (%s): the per-device step equals the whole one, node by node', (meshText, topo, strategy) => {
    let seed = 4242;
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
    const feeds = new Map<string, ArrayLike<number>>();
    for (const n of sourceNodes(g)) {
      const name = String(n.attrs.name);
      const size = (n.type.shape as number[]).reduce((a, b) => a * b, 1);
      if (name === 'input_ids') feeds.set(name, Int32Array.from({ length: size }, () => Math.floor(rand() * hparams.vocab)));
      else if (name === 'positions') feeds.set(name, Int32Array.from({ length: size }, (_, i) => i % dims.seq));
      else if (name === 'labels') feeds.set(name, Int32Array.from({ length: size }, () => Math.floor(rand() * hparams.vocab)));
      else if (name === 'step') feeds.set(name, [3]);
      else if (name === 'lr') feeds.set(name, [1e-3]);
      else if (name.startsWith('adam.v.')) feeds.set(name, Float64Array.from({ length: size }, () => 1e-6 + rand() * 1e-6));
      else if (name.startsWith('adam.m.')) feeds.set(name, Float64Array.from({ length: size }, () => (rand() - 0.5) * 2e-3));
      else feeds.set(name, Float64Array.from({ length: size }, () => (rand() - 0.5) * 0.2));
    }
    const whole = simulateWhole(g, feeds);
    const m = mesh(meshText, topo);
    const run = simulatePartitioned(g, m, parseStrategy(strategy, m).policy, feeds, { env: {}, backwardFrom: step.forwardEnd });
    for (const [name, want] of whole.outputs) {
      const scale = want.reduce((a, v) => Math.max(a, Math.abs(v)), 1);
      let err = 0;
      const got = run.outputs.get(name)!;
      for (let i = 0; i < want.length; i++) err = Math.max(err, Math.abs(got[i] - want[i]));
      expect([name, err / scale < 1e-9]).toEqual([name, true]);
    }
    expect(checkPartition(g, m, run, whole.values)).toEqual([]);
  });
});
