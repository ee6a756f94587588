/**
 * The IR backward graph on the CPU backend against Hugging Face `transformers` (tests/fixtures/gemma2-tiny/
 * reference.json, `train.*`): the mean next-token cross-entropy (HF shifts labels internally) and its gradient
 * for every parameter — L2 norms of all 46 tensors and three full gradients — for the primitive graph and the
 * fused-attention graph, under every rematerialisation policy.
 */
import * as fs from 'fs';
import * as path from 'path';
import { Graph } from '../../src/ir';
import { execute, initCpuBackend, ParamStore } from '../../src/backends/cpu';
import { loadParams } from '../../src/checkpoint/load';
import { readHfConfig } from '../../src/checkpoint';
import { trainingStep, shiftLabels, peakLiveBytes, RematPolicy } from '../../src/train';
import { tf, useCpu } from './helpers';
import { modelGraph } from './model';

const TINY = path.join(__dirname, '../fixtures/gemma2-tiny');
const ref = JSON.parse(fs.readFileSync(path.join(TINY, 'reference.json'), 'utf8'));
const config = readHfConfig(TINY);
const ids: number[][] = ref.input_ids;
const [B, T] = [ids.length, ids[0].length];

function feeds(): Record<string, tf.Tensor> {
  const flat = Int32Array.from(ids.flat());
  return { input_ids: tf.tensor(flat, [B, T], 'int32'), labels: tf.tensor(shiftLabels(flat, B, T), [B, T], 'int32') };
}

function runGrads(g: Graph, params: ParamStore): Record<string, Float32Array> {
  const f = feeds();
  const r = execute(g, f, params);
  const out: Record<string, Float32Array> = {};
  for (const [k, t] of Object.entries(r.outputs)) {
    out[k] = t.dataSync() as Float32Array;
    t.dispose();
  }
  Object.values(f).forEach((t) => t.dispose());
  return out;
}

const l2 = (x: Float32Array) => Math.sqrt(x.reduce((a, v) => a + v * v, 0));

// tfjs `cpu` (plain JS) for every policy; `wasm` (XNNPACK, the CLI's default, whose matmul/broadcast lowerings
// take other paths) once.
describe.each([
  ['primitive', false, 'cpu'],
  ['fused attention', true, 'cpu'],
  ['primitive', false, 'wasm'],
] as const)('loss and gradients vs transformers (%s graph, fused: %s, tfjs %s)', (_name, fused, backend) => {
  let inference: Graph;
  let params: ParamStore;
  beforeAll(async () => {
    if (backend === 'cpu') await useCpu();
    else await initCpuBackend(backend);
    inference = modelGraph(TINY, { batch: B, seq: T, fused });
    params = loadParams(inference, TINY);
  });
  afterAll(() => params.forEach((t) => t.dispose()));

  const policies: RematPolicy[] = backend === 'wasm' ? ['save-all'] : fused ? ['save-all', 'layer-inputs'] : ['save-all', 'layer-inputs', 'matmul-outputs'];
  test.each(policies.map((p) => [p]))('remat %s', (remat) => {
    const step = trainingStep(inference, { optimizer: false, remat });
    const out = runGrads(step.graph, params);
    const loss = out.loss[0];
    expect(Math.abs(loss - ref.train.loss) / ref.train.loss).toBeLessThan(1e-5);
    const names = Object.keys(ref.train.grad_l2);
    expect(names.length).toBe(46);
    for (const n of names) {
      const g = out[`grad.${n}`];
      expect(g).toBeDefined();
      const rel = Math.abs(l2(g) - ref.train.grad_l2[n]) / ref.train.grad_l2[n];
      if (rel > 1e-3) throw new Error(`grad L2 of ${n}: ${l2(g)} vs HF ${ref.train.grad_l2[n]} (rel ${rel})`);
    }
    for (const [n, want] of Object.entries(ref.train.grad_full as Record<string, number[] | number[][]>)) {
      const w = (want as number[] | number[][]).flat();
      const g = out[`grad.${n}`];
      let m = 0;
      for (let i = 0; i < w.length; i++) m = Math.max(m, Math.abs(g[i] - w[i]));
      if (m > 1e-4) throw new Error(`full grad of ${n}: max abs diff ${m}`);
    }
  });
});

test('rematerialisation trades recomputation for kept activations (and the peak of live bytes)', () => {
  const inference = modelGraph(TINY, { batch: B, seq: T });
  const all = trainingStep(inference, { optimizer: false, remat: 'save-all' });
  const layer = trainingStep(inference, { optimizer: false, remat: 'layer-inputs' });
  const dots = trainingStep(inference, { optimizer: false, remat: 'matmul-outputs' });
  expect(all.recomputed).toBe(0);
  expect(layer.recomputed).toBeGreaterThan(0);
  expect(layer.savedBytes()).toBeLessThan(dots.savedBytes());
  expect(dots.savedBytes()).toBeLessThan(all.savedBytes());
  // The gradients (param-sized, live to the end under every policy) are left out: what remat changes is the rest.
  const transient = (g: Graph) => peakLiveBytes(g, {}, { excludeOutputs: true });
  expect(transient(layer.graph)).toBeLessThan(transient(dots.graph));
  expect(transient(dots.graph)).toBeLessThan(transient(all.graph));
  // With them, every policy's peak is at least the gradients' bytes.
  const gradBytes = inference.nodes.filter((n) => n.op === 'param').reduce((a, n) => a + 4 * (n.type.shape as number[]).reduce((p, d) => p * d, 1), 0);
  for (const s of [all, layer, dots]) expect(peakLiveBytes(s.graph)).toBeGreaterThanOrEqual(gradBytes);
});
