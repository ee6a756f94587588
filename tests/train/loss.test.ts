/**
 * The distillation-loss pass and AdamW on small cases computed by hand (plain JS arithmetic in float64).
 * The logits are a param, so the tests can also check gradients: d CE / d z = (softmax(z) - onehot) / N and
 * d D / d z = (softmax(z) - p̃) / N for τ = 1.
 */
import { GraphBuilder, Graph } from '../../src/ir';
import { distillationLoss, grad, trainingStep } from '../../src/train';
import { tf, run, useCpu, rng } from './helpers';

const B = 1;
const T = 3;
const V = 5;
const r = rng(42);
const Z = Array.from({ length: B * T * V }, () => (r() * 2 - 1) * 3);

function logitsGraph(): Graph {
  const b = new GraphBuilder('toy');
  const z = b.param('z', { dtype: 'f32', shape: [B, T, V] });
  // identity through a real op so `logits` is a computed node
  const out = b.op('mul', [z, b.constant(1, 'f32')]);
  return b.build({ outputs: [{ name: 'logits', node: out }] });
}

const row = (t: number) => Z.slice(t * V, (t + 1) * V);
function logSoftmax(z: number[], tau = 1): number[] {
  const s = z.map((v) => v / tau);
  const m = Math.max(...s);
  const lse = m + Math.log(s.reduce((a, v) => a + Math.exp(v - m), 0));
  return s.map((v) => v - lse);
}

let params: Map<string, tf.Tensor>;
beforeAll(async () => {
  await useCpu();
  params = new Map([['z', tf.tensor(Z, [B, T, V])]]);
});
afterAll(() => params.get('z')!.dispose());

const i32 = (v: number[], s: number[]) => tf.tensor(v, s, 'int32');
const f32 = (v: number[], s: number[]) => tf.tensor(v, s, 'float32');

test('label cross-entropy ignores negative labels and averages over the rest', () => {
  const g = grad(distillationLoss(logitsGraph()), 'loss', ['z']);
  const labels = [3, -100, 0];
  const out = run(g, { labels: i32(labels, [B, T]) }, params);
  const want = -(logSoftmax(row(0))[3] + logSoftmax(row(2))[0]) / 2;
  expect(out.loss[0]).toBeCloseTo(want, 5);
  expect(out.ce_loss[0]).toBeCloseTo(want, 5);
  // gradient: (softmax - onehot) / 2 on counted rows, 0 on the ignored one
  for (let t = 0; t < T; t++) {
    const p = logSoftmax(row(t)).map(Math.exp);
    for (let v = 0; v < V; v++) {
      const expected = labels[t] < 0 ? 0 : (p[v] - (v === labels[t] ? 1 : 0)) / 2;
      expect(out['grad.z'][t * V + v]).toBeCloseTo(expected, 5);
    }
  }
});

// A teacher distribution per token (full vocabulary), and its top-3 subset.
const P = [0, 1, 2].map((t) => {
  const w = [0, 1, 2, 3, 4].map((v) => Math.exp(Math.sin(3 * t + v)));
  const s = w.reduce((a, x) => a + x, 0);
  return w.map((x) => x / s);
});

function topk(k: number) {
  const ids: number[] = [];
  const probs: number[] = [];
  for (const p of P) {
    const order = [...p.keys()].sort((a, b) => p[b] - p[a]).slice(0, k);
    ids.push(...order);
    probs.push(...order.map((i) => p[i]));
  }
  return { ids, probs };
}

test('distillation with K = V is the exact cross-entropy to the teacher; distill_kl is the exact KL', () => {
  const g = grad(distillationLoss(logitsGraph(), { distill: { k: V } }), 'loss', ['z']);
  const { ids, probs } = topk(V);
  const out = run(g, { teacher_ids: i32(ids, [B, T, V]), teacher_probs: f32(probs, [B, T, V]) }, params);
  let ce = 0;
  let kl = 0;
  for (let t = 0; t < T; t++) {
    const lq = logSoftmax(row(t));
    for (let v = 0; v < V; v++) {
      ce -= P[t][v] * lq[v];
      kl += P[t][v] * (Math.log(P[t][v]) - lq[v]);
    }
  }
  expect(out.loss[0]).toBeCloseTo(ce / T, 5);
  expect(out.distill_loss[0]).toBeCloseTo(ce / T, 5);
  expect(out.distill_kl[0]).toBeCloseTo(kl / T, 5);
  expect(out.ce_loss).toBeUndefined(); // α = 1: no label term, no labels input
  for (let t = 0; t < T; t++) {
    const q = logSoftmax(row(t)).map(Math.exp);
    for (let v = 0; v < V; v++) expect(out['grad.z'][t * V + v]).toBeCloseTo((q[v] - P[t][v]) / T, 5);
  }
});

test.each([true, false])('top-2 subset, renormalize=%s, temperature 2, mixed with labels (α = 0.25)', (renormalize) => {
  const k = 2;
  const tau = 2;
  const alpha = 0.25;
  const g = distillationLoss(logitsGraph(), { distill: { k, weight: alpha, temperature: tau, renormalize } });
  const { ids, probs } = topk(k);
  // token 1 is padding: all-zero teacher row, and an ignored label
  const pz = probs.map((p, i) => (Math.floor(i / k) === 1 ? 0 : p));
  const labels = [1, -100, 4];
  const out = run(g, { labels: i32(labels, [B, T]), teacher_ids: i32(ids, [B, T, k]), teacher_probs: f32(pz, [B, T, k]) }, params);
  let d = 0;
  let ce = 0;
  for (const t of [0, 2]) {
    const lq = logSoftmax(row(t), tau);
    const sub = pz.slice(t * k, (t + 1) * k);
    const mass = sub.reduce((a, x) => a + x, 0);
    sub.forEach((p, j) => (d -= (renormalize ? p / mass : p) * lq[ids[t * k + j]]));
    ce -= logSoftmax(row(t))[labels[t]];
  }
  d /= 2;
  ce /= 2;
  expect(out.distill_loss[0]).toBeCloseTo(d, 5);
  expect(out.ce_loss[0]).toBeCloseTo(ce, 5);
  expect(out.loss[0]).toBeCloseTo((1 - alpha) * ce + alpha * tau * tau * d, 5);
});

test('bad options are errors with a reason', () => {
  expect(() => distillationLoss(logitsGraph(), { distill: { k: V + 1 } })).toThrow(/K must be an integer in \[1, 5\]/);
  expect(() => distillationLoss(logitsGraph(), { distill: { k: 2, weight: 1.5 } })).toThrow(/weight must be in \[0, 1\]/);
  expect(() => distillationLoss(logitsGraph(), { distill: { k: 2, temperature: 0 } })).toThrow(/temperature must be > 0/);
  expect(() => distillationLoss(logitsGraph(), { logits: 'nope' })).toThrow(/no output 'nope'/);
});

test('AdamW step (decoupled weight decay, bias correction, global-norm clipping) matches the formula', () => {
  const step = trainingStep(logitsGraph(), { optimizer: { weightDecay: 0.1, clipNorm: 0.05, beta1: 0.9, beta2: 0.99, eps: 1e-8 } }).graph;
  const labels = [3, 1, 0];
  const m0 = Z.map((_, i) => 0.01 * Math.cos(i));
  const v0 = Z.map((_, i) => 0.001 * (1 + Math.sin(i) ** 2));
  const t = 3;
  const lr = 0.1;
  const feeds = {
    labels: i32(labels, [B, T]),
    step: tf.scalar(t),
    lr: tf.scalar(lr),
    'adam.m.z': f32(m0, [B, T, V]),
    'adam.v.z': f32(v0, [B, T, V]),
  };
  const out = run(step, feeds, params);
  // the gradient by hand
  const g: number[] = [];
  for (let tt = 0; tt < T; tt++) {
    const p = logSoftmax(row(tt)).map(Math.exp);
    for (let v = 0; v < V; v++) g.push((p[v] - (v === labels[tt] ? 1 : 0)) / T);
  }
  const norm = Math.sqrt(g.reduce((a, x) => a + x * x, 0));
  expect(out.grad_norm[0]).toBeCloseTo(norm, 5);
  const c = Math.min(1, 0.05 / (norm + 1e-6));
  expect(c).toBeLessThan(1); // clipping is active in this case
  for (let i = 0; i < Z.length; i++) {
    const gi = g[i] * c;
    const m = 0.9 * m0[i] + 0.1 * gi;
    const v = 0.99 * v0[i] + 0.01 * gi * gi;
    const p = Z[i] * (1 - lr * 0.1); // z has rank 3: decayed
    const next = p - (lr / (1 - 0.9 ** t)) * (m / (Math.sqrt(v) / Math.sqrt(1 - 0.99 ** t) + 1e-8));
    expect(out['adam.m.z'][i]).toBeCloseTo(m, 6);
    expect(out['adam.v.z'][i]).toBeCloseTo(v, 7);
    expect(out.z[i]).toBeCloseTo(next, 5);
  }
});

test('AdamW with master weights: the update reads and writes the master copy; the param\'s next value is the master cast back', () => {
  const opt = { weightDecay: 0.1, beta1: 0.9, beta2: 0.99, eps: 1e-8 };
  const step = trainingStep(logitsGraph(), { optimizer: { ...opt, paramUpdate: 'master' } }).graph;
  expect(step.outputs.map((o) => o.name)).toEqual(['loss', 'ce_loss', 'grad_norm', 'z', 'master.z', 'adam.m.z', 'adam.v.z']);
  const labels = [3, 1, 0];
  const m0 = Z.map((_, i) => 0.01 * Math.cos(i));
  const v0 = Z.map((_, i) => 0.001 * (1 + Math.sin(i) ** 2));
  // The master differs from the weights (as after bf16 rounding): the gradient comes from the weights, the
  // update from the master.
  const w0 = Z.map((x, i) => x + 0.05 * Math.sin(3 * i));
  const [t, lr] = [2, 0.1];
  const feeds = {
    labels: i32(labels, [B, T]), step: tf.scalar(t), lr: tf.scalar(lr),
    'adam.m.z': f32(m0, [B, T, V]), 'adam.v.z': f32(v0, [B, T, V]), 'master.z': f32(w0, [B, T, V]),
  };
  const out = run(step, feeds, params);
  const g: number[] = [];
  for (let tt = 0; tt < T; tt++) {
    const p = logSoftmax(row(tt)).map(Math.exp);
    for (let v = 0; v < V; v++) g.push((p[v] - (v === labels[tt] ? 1 : 0)) / T);
  }
  for (let i = 0; i < Z.length; i++) {
    const m = 0.9 * m0[i] + 0.1 * g[i];
    const v = 0.99 * v0[i] + 0.01 * g[i] * g[i];
    const next = w0[i] * (1 - lr * 0.1) - (lr / (1 - 0.9 ** t)) * (m / (Math.sqrt(v) / Math.sqrt(1 - 0.99 ** t) + 1e-8));
    expect(out['master.z'][i]).toBeCloseTo(next, 5);
    expect(out.z[i]).toBe(out['master.z'][i]); // f32 → f32: the cast is exact here (bf16 on a TPU program)
  }
  // 'cast': no master; the update starts from the weights, as without the option.
  const plain = run(trainingStep(logitsGraph(), { optimizer: opt }).graph, feeds, params);
  const cast = trainingStep(logitsGraph(), { optimizer: { ...opt, paramUpdate: 'cast' } }).graph;
  expect(cast.nodes.some((n) => n.op === 'input' && String(n.attrs.name).startsWith('master.'))).toBe(false);
  expect(Array.from(run(cast, feeds, params).z)).toEqual(Array.from(plain.z));
});
