/**
 * Translation validation beyond Gemma 2: the other architectures of examples/ (GPT-2: fused QKV, no RoPE,
 * divide-by-sqrt scale; Llama 2 with GQA; Gemma 1 with MQA), shrunk to a few hundred parameters with random
 * weights, run on the CPU backend before and after the default pipeline; outputs agree to 1e-5 and every
 * attention is fused.
 */
import * as fs from 'fs';
import * as path from 'path';
import { compileModel } from '../../grammar';
import { Graph, countOps } from '../../src/ir';
import { initCpuBackend, execute, tf, ParamStore } from '../../src/backends/cpu';
import { BUILTIN_PASSES, runPipeline } from '../../src/passes';

const ROOT = path.join(__dirname, '../..');
const B = 2;
const T = 7;
const VOCAB = 32;

function rng(seed: number) {
  return () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff - 0.5) * 2;
}

function graphOf(file: string, hparams: Record<string, number>): Graph {
  const r = compileModel(fs.readFileSync(path.join(ROOT, file), 'utf8'), file, { hparams, dims: { batch: B, seq: T } });
  if (!r.graph) throw new Error(r.diagnostics.map((d) => d.message).join('\n'));
  return r.graph;
}

function run(g: Graph, params: ParamStore, ids: tf.Tensor): Float32Array {
  const r = execute(g, { input_ids: ids }, params, {});
  const out = r.outputs.logits.dataSync() as Float32Array;
  Object.values(r.outputs).forEach((t) => t.dispose());
  return out;
}

const cases: [string, Record<string, number>, { groups: number; window: number }][] = [
  ['examples/gpt2.model', { vocab: VOCAB, d_model: 16, n_layers: 2, n_heads: 4, n_ctx: 16 }, { groups: 1, window: 0 }],
  ['examples/llama2.model', { vocab: VOCAB, d_model: 16, n_layers: 2, d_ff: 24, n_heads: 4, n_kv_heads: 2, max_pos: 16 }, { groups: 2, window: 0 }],
  ['examples/gemma1.model', { vocab: VOCAB, d_model: 16, n_layers: 2, d_ff: 24, n_heads: 4, n_kv_heads: 1, head_dim: 8, max_pos: 16 }, { groups: 4, window: 0 }],
];

beforeAll(() => initCpuBackend('cpu'));

test.each(cases)('%s: the default pipeline preserves the logits and fuses every attention', (file, hparams, want) => {
  const g0 = graphOf(file, hparams);
  const r = rng(11);
  const params: ParamStore = new Map();
  for (const n of g0.nodes)
    if (n.op === 'param') {
      const shape = n.type.shape as number[];
      params.set(String(n.attrs.name), tf.tensor(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, r), shape));
    }
  const ids = tf.tensor2d(Int32Array.from({ length: B * T }, (_, i) => (i * 7 + 3) % VOCAB), [B, T], 'int32');
  try {
    const before = run(g0, params, ids);
    const { graph } = runPipeline(g0, BUILTIN_PASSES);
    const after = run(graph, params, ids);
    let worst = 0;
    for (let i = 0; i < before.length; i++) worst = Math.max(worst, Math.abs(before[i] - after[i]));
    expect(Number.isFinite(before[0])).toBe(true);
    expect(worst).toBeLessThanOrEqual(1e-5);
    const ops = countOps(graph);
    expect(ops.fused_attention).toBe(2);
    expect(ops.softmax ?? 0).toBe(0);
    for (const n of graph.nodes.filter((x) => x.op === 'fused_attention')) expect(n.attrs).toMatchObject({ causal: true, ...want });
  } finally {
    ids.dispose();
    params.forEach((t) => t.dispose());
  }
});
