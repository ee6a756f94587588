/**
 * `lapidary run` on checkpoints a user brings, not in the repository: a Gemma-2-shaped config of other sizes
 * (3 layers, 6 query / 2 K/V heads, head_dim 8, window 3, other caps), random weights written by the test
 * into a temp dir as one F32 file, as BF16 shards with model.safetensors.index.json, and as F16. The logits
 * of each agree with the F32 original within what the stored precision allows, and exactly (1e-6) with the
 * F32 graph run in-process on the weights rounded the same way; broken shards fail with the file and tensor.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { execute, initCpuBackend, tf } from '../../src/backends/cpu';
import { writeSafetensors, INDEX_FILE, TensorData } from '../../src/checkpoint';
import { Graph } from '../../src/ir';
import { lapidary, expectCleanFailure } from '../cli/helpers';
import { gemma2 } from './model';

const config = {
  architectures: ['Gemma2ForCausalLM'],
  model_type: 'gemma2',
  vocab_size: 96,
  hidden_size: 48,
  intermediate_size: 80,
  num_hidden_layers: 3,
  num_attention_heads: 6,
  num_key_value_heads: 2,
  head_dim: 8,
  query_pre_attn_scalar: 8,
  sliding_window: 3,
  attn_logit_softcapping: 20.0,
  final_logit_softcapping: 15.0,
  rms_norm_eps: 1e-6,
  rope_theta: 10000.0,
  max_position_embeddings: 64,
  eos_token_id: 1,
  tie_word_embeddings: true,
};
const IDS = [[2, 17, 40, 95, 3, 61, 8, 29], [2, 5, 5, 77, 13, 0, 90, 44]];

let tmp: string;
let graph: Graph;
/** The F32 original, by tensor name. */
const weights = new Map<string, { shape: number[]; data: Float32Array }>();

/** Round to bfloat16 (nearest, ties to even): what a BF16 checkpoint of these weights stores. */
function bf16(x: Float32Array): Float32Array {
  const y = Float32Array.from(x);
  const u = new Uint32Array(y.buffer);
  for (let i = 0; i < u.length; i++) u[i] = ((u[i] + 0x7fff + ((u[i] >>> 16) & 1)) & 0xffff0000) >>> 0;
  return y;
}

function ckDir(name: string): string {
  const d = path.join(tmp, name);
  fs.mkdirSync(d);
  fs.writeFileSync(path.join(d, 'config.json'), JSON.stringify(config));
  return d;
}

function writeSharded(dir: string, dtype: TensorData['dtype'], shards: number): void {
  const names = [...weights.keys()].sort();
  const weightMap: Record<string, string> = {};
  for (let s = 0; s < shards; s++) {
    const file = `model-${String(s + 1).padStart(5, '0')}-of-${String(shards).padStart(5, '0')}.safetensors`;
    const part: Record<string, TensorData> = {};
    names.filter((_, i) => i % shards === s).forEach((n) => ((part[n] = { dtype, ...weights.get(n)! }), (weightMap[n] = file)));
    writeSafetensors(path.join(dir, file), part);
  }
  fs.writeFileSync(path.join(dir, INDEX_FILE), JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }, null, 2));
}

function runLogits(dir: string): number[] {
  const out = path.join(tmp, `${path.basename(dir)}-logits.json`);
  const r = lapidary(['run', 'gemma2.model', '--checkpoint', dir, '--input-ids', path.join(tmp, 'ids.json'), '--logits-out', out]);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return JSON.parse(fs.readFileSync(out, 'utf8')).logits.flat(2);
}

/** The same fused graph run in-process on the given weights (what each checkpoint should decode to). */
function inProcess(round: (x: Float32Array) => Float32Array): Float32Array {
  const params = new Map([...weights].map(([n, w]) => [n, tf.tensor(round(w.data), w.shape)]));
  const ids = tf.tensor2d(IDS, undefined, 'int32');
  const r = execute(graph, { input_ids: ids }, params);
  const data = r.outputs.logits.dataSync() as Float32Array;
  r.outputs.logits.dispose();
  ids.dispose();
  params.forEach((t) => t.dispose());
  return data;
}

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lapidary-userck-'));
  fs.writeFileSync(path.join(tmp, 'ids.json'), JSON.stringify(IDS));
  graph = gemma2(config, { fused: true });
  let s = 12345;
  const rnd = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32 - 0.5) * 2;
  for (const n of graph.nodes) {
    if (n.op !== 'param') continue;
    const shape = n.type.shape as number[];
    // Values exactly representable in F16 (multiples of 2^-12 below 0.25), so the F16 file stores them exactly
    // and the BF16 file (8 significant bits) has to round most of them.
    const data = Float32Array.from({ length: shape.reduce((a, d) => a * d, 1) }, () => Math.round(rnd() * 0.25 * 4096) / 4096);
    weights.set(String(n.attrs.name), { shape, data });
  }
  await initCpuBackend('wasm');
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

test('a Gemma-2-shaped checkpoint of other sizes: F32, BF16 in 3 shards with an index, F16 — logits within the stored precision', () => {
  const f32 = ckDir('f32');
  writeSafetensors(path.join(f32, 'model.safetensors'), Object.fromEntries([...weights].map(([n, w]) => [n, { dtype: 'F32', ...w }])));
  const b16 = ckDir('bf16-sharded');
  writeSharded(b16, 'BF16', 3);
  const h16 = ckDir('f16');
  writeSafetensors(path.join(h16, 'model.safetensors'), Object.fromEntries([...weights].map(([n, w]) => [n, { dtype: 'F16', ...w }])));

  const ref = runLogits(f32);
  expect(ref).toHaveLength(2 * 8 * 96);
  // The CLI's F32 run is the in-process fused graph on the original weights.
  expect(maxDiff(ref, inProcess((x) => x))).toBeLessThan(1e-6);

  // BF16: decoded exactly (equal to the F32 graph on bf16-rounded weights), and close to the F32 original.
  const b = runLogits(b16);
  expect(maxDiff(b, inProcess(bf16))).toBeLessThan(1e-6);
  const db = maxDiff(b, ref);
  expect(db).toBeGreaterThan(0); // the shards really stored rounded values
  expect(db).toBeLessThan(0.05 * Math.max(...ref.map(Math.abs)));

  // F16 holds these weights exactly: the same logits as F32.
  expect(maxDiff(runLogits(h16), ref)).toBeLessThan(1e-6);
});

test('an untied LM head (tie_word_embeddings false) is read from lm_head.weight; tensors the model does not use are named in a warning', () => {
  // lm_head = the embedding with its rows reversed: the logits are the tied model's with the vocabulary reversed.
  const emb = weights.get('model.embed_tokens.weight')!;
  const [V, D] = emb.shape;
  const head = new Float32Array(V * D);
  for (let r = 0; r < V; r++) head.set(emb.data.subarray((V - 1 - r) * D, (V - r) * D), r * D);
  const all = (extra: Record<string, TensorData>) => ({ ...Object.fromEntries([...weights].map(([n, w]) => [n, { dtype: 'F32', ...w } as TensorData])), ...extra });
  const untied = path.join(tmp, 'untied');
  fs.mkdirSync(untied);
  fs.writeFileSync(path.join(untied, 'config.json'), JSON.stringify({ ...config, tie_word_embeddings: false }));
  writeSafetensors(path.join(untied, 'model.safetensors'), all({ 'lm_head.weight': { dtype: 'F32', shape: [V, D], data: head } }));
  const got = runLogits(untied);
  const tied = inProcess((x) => x);
  const T = IDS[0].length;
  let m = 0;
  for (let bt = 0; bt < IDS.length * T; bt++) for (let j = 0; j < V; j++) m = Math.max(m, Math.abs(got[bt * V + j] - tied[bt * V + (V - 1 - j)]));
  expect(m).toBeLessThan(1e-5);
  // The same file under a tied config: lm_head.weight is left out, and the user is told so (the run goes on).
  const extra = path.join(tmp, 'extra');
  fs.mkdirSync(extra);
  fs.writeFileSync(path.join(extra, 'config.json'), JSON.stringify({ ...config, num_hidden_layers: 2 }));
  writeSafetensors(path.join(extra, 'model.safetensors'), all({ 'lm_head.weight': { dtype: 'F32', shape: [V, D], data: head } }));
  const r = lapidary(['run', 'gemma2.model', '--checkpoint', extra, '--input-ids', path.join(tmp, 'ids.json')]);
  expect(r.code).toBe(0);
  expect(r.stderr).toMatch(/^lapidary: warning: \d+ tensors of .*extra.* are not used by the model: lm_head\.weight, model\.layers\.2\..*\(does config\.json match the checkpoint\?\)/);
});

describe('broken user checkpoints: errors name the file and the tensor', () => {
  const run = (dir: string) => lapidary(['run', 'gemma2.model', '--checkpoint', dir, '--input-ids', path.join(tmp, 'ids.json')]);
  const shard = (dir: string, i: number) => path.join(dir, `model-0000${i}-of-00003.safetensors`);

  test('truncated shard', () => {
    const dir = ckDir('truncated');
    writeSharded(dir, 'BF16', 3);
    fs.truncateSync(shard(dir, 2), fs.statSync(shard(dir, 2)).size - 100);
    const r = run(dir);
    expectCleanFailure(r);
    expect(r.stderr).toMatch(/model-00002-of-00003\.safetensors: tensor '[\w.]+': data_offsets \[\d+, \d+\] are out of range: the file has \d+ data bytes \(the file is truncated\)/);
  });

  test('index pointing at a missing shard', () => {
    const dir = ckDir('missing-shard');
    writeSharded(dir, 'BF16', 3);
    fs.rmSync(shard(dir, 3));
    const r = run(dir);
    expectCleanFailure(r);
    expect(r.stderr).toMatch(/model\.safetensors\.index\.json: shard 'model-00003-of-00003\.safetensors' \(holding \d+ tensors, e\.g\. '[\w.]+'\) does not exist/);
  });

  test('tensor missing from the index', () => {
    const dir = ckDir('missing-tensor');
    writeSharded(dir, 'BF16', 3);
    const idx = JSON.parse(fs.readFileSync(path.join(dir, INDEX_FILE), 'utf8'));
    delete idx.weight_map['model.layers.2.mlp.down_proj.weight'];
    fs.writeFileSync(path.join(dir, INDEX_FILE), JSON.stringify(idx));
    const r = run(dir);
    expectCleanFailure(r);
    expect(r.stderr).toMatch(
      /has no tensor 'model\.layers\.2\.mlp\.down_proj\.weight' \(closest: 'model\.layers\.\d\.mlp\.down_proj\.weight'\); .*model\.safetensors\.index\.json does not list it in its weight_map; the model needs it for \[48, 80\]/,
    );
  });
});
