/**
 * Random init follows Hugging Face per kind of vector: a vector every use multiplies by (Llama RMSNorm, LayerNorm
 * weights) starts at 1, a bias or a Gemma norm scale (`x * (1 + w)`) at 0. With every norm at 0, a Llama or GPT-2
 * model trained from scratch started with all-zero activations and uniform logits (loss exactly ln V).
 */
import * as fs from 'fs';
import * as path from 'path';
import { compileModel } from '../../grammar';
import { execute, initCpuBackend, tf } from '../../src/backends/cpu';
import { initParams, scaleVectors } from '../../src/train/ckpt';

const ROOT = path.join(__dirname, '..', '..');
const small = { vocab: 64, d_model: 32, n_layers: 2, d_ff: 64, n_heads: 4, n_kv_heads: 2, head_dim: 8 };
function graph(file: string, hparams: Record<string, number>) {
  const r = compileModel(fs.readFileSync(path.join(ROOT, file), 'utf8'), file, { hparams, dims: { batch: 1, seq: 8 } });
  if (!r.graph) throw new Error(r.diagnostics.map((d) => d.message).join('\n'));
  return r.graph;
}

beforeAll(async () => {
  await initCpuBackend('cpu');
});

test('scale vectors: Llama norms and GPT-2 LayerNorm weights are 1; Gemma norms and biases 0', () => {
  const llama = graph('examples/llama2.model', small);
  const l = scaleVectors(llama);
  expect(l).toContain('model.layers.0.input_layernorm.weight');
  expect(l).toContain('model.norm.weight');
  const gemma = scaleVectors(graph('gemma2.model', small));
  expect(gemma.size).toBe(0);
  const gpt2 = graph('examples/gpt2.model', { vocab: 64, d_model: 32, n_layers: 2, n_heads: 4 });
  const g = scaleVectors(gpt2);
  expect(g).toContain('transformer.h.0.ln_1.weight');
  expect(g).toContain('transformer.ln_f.weight');
  expect([...g].filter((n) => n.endsWith('.bias'))).toEqual([]);

  const ps = initParams(llama, 0);
  expect([...ps.get('model.norm.weight')!.dataSync()].every((x) => x === 1)).toBe(true);
  expect([...initParams(gpt2, 0).get('transformer.h.0.ln_1.bias')!.dataSync()].every((x) => x === 0)).toBe(true);
});

test('a freshly initialised Llama gives non-uniform logits (it used to give exactly uniform ones)', () => {
  const llama = graph('examples/llama2.model', small);
  const ps = initParams(llama, 0);
  const ids = tf.tensor2d([[1, 5, 9, 13, 2, 7, 3, 11]], [1, 8], 'int32');
  const logits = execute(llama, { input_ids: ids }, ps).outputs.logits;
  const spread = tf.max(tf.moments(logits, -1).variance).dataSync()[0];
  expect(spread).toBeGreaterThan(1e-6);
  logits.dispose();
  ids.dispose();
});
