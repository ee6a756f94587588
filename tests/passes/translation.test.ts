/**
 * Translation validation: the tiny Gemma 2 checkpoint (real HF weights) runs on the CPU backend before and
 * after every pass of the default pipeline; outputs and every tapped hidden state must agree to 1e-5, and the
 * final graph must still match transformers' logits. Also checks what "done" means on that graph.
 */
import * as fs from 'fs';
import * as path from 'path';
import { compileModel } from '../../grammar';
import { Graph, countOps } from '../../src/ir';
import { initCpuBackend, execute, tf, ParamStore } from '../../src/backends/cpu';
import { loadParams } from '../../src/checkpoint/load';
import { readHfConfig } from '../../src/checkpoint';
import { BUILTIN_PASSES, runPipeline } from '../../src/passes';

const TINY = path.join(__dirname, '../fixtures/gemma2-tiny');
const MODEL = path.join(__dirname, '../../gemma2.model');
const ref = JSON.parse(fs.readFileSync(path.join(TINY, 'reference.json'), 'utf8'));

export function tinyGraph(): Graph {
  const r = compileModel(fs.readFileSync(MODEL, 'utf8'), MODEL, { config: readHfConfig(TINY) });
  if (!r.graph) throw new Error(JSON.stringify(r.diagnostics.slice(0, 2)));
  return r.graph;
}

function run(g: Graph, params: ParamStore): Record<string, Float32Array> {
  const ids = tf.tensor2d(ref.input_ids.flat(), [ref.input_ids.length, ref.input_ids[0].length], 'int32');
  const fetch = Object.values(g.taps);
  const r = execute(g, { input_ids: ids }, params, { fetch });
  const out: Record<string, Float32Array> = {};
  for (const [k, t] of Object.entries(r.outputs)) out[k] = t.dataSync() as Float32Array;
  for (const [scope, id] of Object.entries(g.taps)) out[`tap:${scope}`] = r.fetched.get(id)!.dataSync() as Float32Array;
  Object.values(r.outputs).forEach((t) => t.dispose());
  r.fetched.forEach((t) => t.dispose());
  ids.dispose();
  return out;
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe('every pass preserves the tiny Gemma 2 outputs (CPU backend, 1e-5)', () => {
  const g0 = tinyGraph();
  const graphs: Graph[] = [g0];
  for (const p of BUILTIN_PASSES) graphs.push(runPipeline(graphs[graphs.length - 1], [p]).graph);
  let params: ParamStore;
  let before: Record<string, Float32Array>;
  beforeAll(async () => {
    await initCpuBackend('cpu');
    params = loadParams(g0, TINY);
    before = run(g0, params);
  });
  afterAll(() => params.forEach((t) => t.dispose()));
  const results = new Map<Graph, Record<string, Float32Array>>();
  const cached = (g: Graph) => results.get(g) ?? (results.set(g, run(g, params)), results.get(g)!);

  test('the unoptimised graph reproduces transformers (sanity of the harness)', () => {
    expect(maxDiff(before.logits, ref.logits.flat(2))).toBeLessThan(1e-4);
  });

  test.each(BUILTIN_PASSES.map((p, i) => [p.name, i] as const))('%s', (_name, i) => {
    const [g, h] = [graphs[i], graphs[i + 1]];
    const a = i === 0 ? before : cached(g);
    const b = cached(h);
    expect(Object.keys(b).sort()).toEqual(Object.keys(a).sort());
    const worst = Math.max(...Object.keys(a).map((k) => maxDiff(a[k], b[k])));
    expect(worst).toBeLessThanOrEqual(1e-5);
  });

  test('the optimised graph: 4 fused attentions (2 windowed), no [seq, seq] tensor, no K/V repeat, no tanh; still matches transformers', () => {
    const g = graphs[graphs.length - 1];
    const ops = countOps(g);
    const fa = g.nodes.filter((n) => n.op === 'fused_attention');
    expect(fa.length).toBe(4);
    expect(fa.map((n) => n.attrs.window)).toEqual([4, 0, 4, 0]);
    expect(fa.every((n) => n.attrs.causal === true && n.attrs.groups === 2 && n.attrs.softcap === 10 && n.inputs.length === 3)).toBe(true);
    expect(g.nodes.filter((n) => n.type.shape.filter((d) => d === 'seq').length >= 2)).toEqual([]);
    expect(ops.tanh ?? 0).toBe(0);
    expect(ops.broadcast ?? 0).toBe(0);
    expect(ops.select ?? 0).toBe(0);
    expect(ops.softmax ?? 0).toBe(0);
    // K/V enter attention with 2 heads (not repeated to 4)
    for (const n of fa) expect(g.nodes.find((x) => x.id === n.inputs[1])!.type.shape[1]).toBe(2);
    const out = run(g, params);
    expect(maxDiff(out.logits, ref.logits.flat(2))).toBeLessThan(1e-4);
  });
});
