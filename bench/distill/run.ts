/**
 * A small reproduction of Gemma 2's distillation claim: a student trained on a teacher's next-token
 * distributions beats the same student trained on the labels, at an equal token budget.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/distill/run.js
 *
 * Corpus: a synthetic order-2 Markov source over 128 tokens: the context is (previous-but-one token mod 4,
 * previous token), 512 contexts, each with 8 possible successors with random log-normal weights, so the true conditional entropy is known exactly. Teacher: Gemma 2 shaped,
 * d_model 64, 4 layers, trained on 4× the student's budget. Student: d_model 32, 2 layers. Students see the
 * same windows in the same order, for the same number of steps: (a) labels only; (b) distillation (α = 1)
 * from the teacher's top-K for K = 4, 16 and the full vocabulary (K = 128), and from K = 16 sampled ids.
 * Held-out metrics every few steps: cross-entropy on the true next tokens (→ perplexity) and the exact
 * KL(teacher ‖ student). Results go to bench/distill/results.json and docs/distillation.svg.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { compileModel } from '../../grammar';
import { initCpuBackend, ParamStore } from '../../src/backends/cpu';
import { Graph } from '../../src/ir';
import { TokenStream, TargetsReader, readTargetsMeta } from '../../src/train/data';
import { Trainer, zeroState, evaluate } from '../../src/train/trainer';
import { initParams } from '../../src/train/ckpt';
import { makeTargets } from '../../src/train/targets';
import { mulberry32 as rng } from '../../src/random';

const ROOT = path.join(__dirname, '../../..');
const V = 128;
const SEQ = 32;
const BATCH = 8;
const STUDENT_STEPS = Number(process.env.STUDENT_STEPS ?? 150);
const TEACHER_STEPS = Number(process.env.TEACHER_STEPS ?? 4 * STUDENT_STEPS);
const EVAL_EVERY = Math.max(1, Math.floor(STUDENT_STEPS / 10));
const HELD_OUT_WINDOWS = 64;


/** The source: context (a mod 4, b) of the last two tokens → 8 successors with log-normal weights. */
const CONTEXTS = 4 * V;
function makeSource(seed: number) {
  const r = rng(seed);
  const succ: number[][] = [];
  const prob: number[][] = [];
  for (let c = 0; c < CONTEXTS; c++) {
    const ids = new Set<number>();
    while (ids.size < 8) ids.add(Math.floor(r() * V));
    const w = [...ids].map(() => Math.exp(1.5 * Math.sqrt(-2 * Math.log(Math.max(r(), 1e-12))) * Math.cos(2 * Math.PI * r())));
    const s = w.reduce((x, y) => x + y, 0);
    succ.push([...ids]);
    prob.push(w.map((x) => x / s));
  }
  return { succ, prob };
}

function sample(src: ReturnType<typeof makeSource>, n: number, seed: number): { ids: Int32Array; nll: number } {
  const r = rng(seed);
  const ids = new Int32Array(n);
  ids[0] = Math.floor(r() * V);
  ids[1] = Math.floor(r() * V);
  let nll = 0;
  for (let i = 2; i < n; i++) {
    const c = (ids[i - 2] % 4) * V + ids[i - 1];
    let u = r();
    let j = 0;
    for (; j < 7; j++) {
      u -= src.prob[c][j];
      if (u < 0) break;
    }
    ids[i] = src.succ[c][j];
    nll -= Math.log(src.prob[c][j]);
  }
  return { ids, nll: nll / (n - 2) };
}

const stream = (file: string, ids: Int32Array): TokenStream => ({ file, ids, hash: `${file}-${ids.length}` });

function config(d: number, layers: number, heads: number, kv: number, ff: number) {
  return {
    vocab_size: V, hidden_size: d, intermediate_size: ff, num_hidden_layers: layers, num_attention_heads: heads, num_key_value_heads: kv,
    head_dim: 16, query_pre_attn_scalar: 16, sliding_window: 16, attn_logit_softcapping: 50, final_logit_softcapping: 30,
    rms_norm_eps: 1e-6, rope_theta: 10000, max_position_embeddings: 128, initializer_range: 0.02,
  };
}

function compile(cfg: object, batch: number): Graph {
  const src = fs.readFileSync(path.join(ROOT, 'gemma2.model'), 'utf8');
  const r = compileModel(src, 'gemma2.model', { config: cfg, dims: { batch, seq: SEQ } });
  if (!r.graph) throw new Error(JSON.stringify(r.diagnostics));
  return r.graph;
}

interface Curve {
  name: string;
  points: { step: number; tokens: number; ce: number; kl: number }[];
  train_ms: number;
}

function trainRun(name: string, g: Graph, evalG: Graph, data: TokenStream, held: TokenStream, heldTargets: TargetsReader, steps: number, targets?: TargetsReader, seed = 7): { curve: Curve; params: ParamStore } {
  const params = initParams(g, seed, 0.02);
  const state = zeroState(params);
  const trainer = new Trainer(g, {
    batch: BATCH,
    seq: SEQ,
    targets,
    distill: targets ? { weight: 1 } : undefined,
    optimizer: { weightDecay: 0.01, clipNorm: 1 },
    schedule: { lr: 3e-3, warmup: Math.ceil(steps / 20), schedule: 'cosine' },
  });
  const windows = Array.from({ length: HELD_OUT_WINDOWS }, (_, i) => i);
  const curve: Curve = { name, points: [], train_ms: 0 };
  const ev = (step: number) => {
    const m = evaluate(evalG, params, held, { batch: BATCH, seq: SEQ, windows, targets: heldTargets });
    curve.points.push({ step, tokens: step * BATCH * SEQ, ce: m.ce_loss, kl: m.distill_kl });
    process.stderr.write(`${name.padEnd(28)} step ${String(step).padStart(4)}  held-out CE ${m.ce_loss.toFixed(4)}  KL(teacher‖model) ${m.distill_kl.toFixed(4)}\n`);
  };
  ev(0);
  for (let s = 1; s <= steps; s++) {
    const t0 = performance.now();
    trainer.run(data, s, steps, params, state);
    curve.train_ms += performance.now() - t0;
    if (s % EVAL_EVERY === 0 || s === steps) ev(s);
  }
  state.m.forEach((t) => t.dispose());
  state.v.forEach((t) => t.dispose());
  return { curve, params };
}

async function main() {
  await initCpuBackend('wasm');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lapidary-distill-'));
  const src = makeSource(1);
  const studentTokens = STUDENT_STEPS * BATCH * SEQ;
  const teacherData = sample(src, TEACHER_STEPS * BATCH * SEQ, 2);
  const studentData = sample(src, studentTokens, 3);
  const heldData = sample(src, HELD_OUT_WINDOWS * SEQ, 4);
  const teacherS = stream('teacher.bin', teacherData.ids);
  const studentS = stream('student.bin', studentData.ids);
  const heldS = stream('held.bin', heldData.ids);
  // the source's own conditional entropy on the held-out positions that have a full context
  const trueCe = heldData.nll;

  const tg = compile(config(64, 4, 4, 2, 128), BATCH);
  const sg = compile(config(32, 2, 2, 1, 64), BATCH);

  // Teacher, evaluated against itself-free metrics: only CE (its KL to itself is 0).
  const tParams = initParams(tg, 11, 0.02);
  const tState = zeroState(tParams);
  const tTrainer = new Trainer(tg, { batch: BATCH, seq: SEQ, optimizer: { weightDecay: 0.01, clipNorm: 1 }, schedule: { lr: 3e-3, warmup: Math.ceil(TEACHER_STEPS / 20), schedule: 'cosine' } });
  const t0 = performance.now();
  for (let s = 1; s <= TEACHER_STEPS; s++) {
    const l = tTrainer.run(teacherS, s, TEACHER_STEPS, tParams, tState);
    if (s % Math.max(1, Math.floor(TEACHER_STEPS / 10)) === 0) process.stderr.write(`teacher step ${s}/${TEACHER_STEPS} loss ${l.loss.toFixed(4)}\n`);
  }
  const teacherMs = performance.now() - t0;
  const teacherEval = evaluate(tg, tParams, heldS, { batch: BATCH, seq: SEQ, windows: Array.from({ length: HELD_OUT_WINDOWS }, (_, i) => i) });

  // Teacher targets for the student stream (top-k for several K, and sampled) and exact ones for the held-out set.
  const targetDir = (name: string, data: TokenStream, k: number, strategy: 'topk' | 'sample') => {
    const dir = path.join(tmp, name);
    makeTargets(tg, tParams, data, { out: dir, k, strategy, seq: SEQ, batch: BATCH, teacher: 'bench-teacher', seed: 5 });
    return new TargetsReader(dir, readTargetsMeta(dir));
  };
  const heldTargets = targetDir('held', heldS, V, 'topk');
  const runs: { name: string; targets?: TargetsReader }[] = [
    { name: 'labels only' },
    { name: 'distill top-4' },
    { name: 'distill top-16' },
    { name: 'distill full (K = 128)' },
    { name: 'distill sampled 16' },
  ];
  runs[1].targets = targetDir('k4', studentS, 4, 'topk');
  runs[2].targets = targetDir('k16', studentS, 16, 'topk');
  runs[3].targets = targetDir('k128', studentS, V, 'topk');
  runs[4].targets = targetDir('s16', studentS, 16, 'sample');

  const curves: Curve[] = [];
  for (const r of runs) {
    const { curve, params } = trainRun(r.name, sg, sg, studentS, heldS, heldTargets, STUDENT_STEPS, r.targets);
    curves.push(curve);
    params.forEach((t) => t.dispose());
  }
  const results = {
    machine: '2-core x86-64, Node 20, tfjs wasm backend',
    settings: { vocab: V, seq: SEQ, batch: BATCH, student_steps: STUDENT_STEPS, student_tokens: studentTokens, teacher_steps: TEACHER_STEPS, teacher_tokens: teacherData.ids.length, held_out_tokens: heldData.ids.length },
    true_conditional_entropy: trueCe,
    teacher: { held_out_ce: teacherEval.ce_loss, train_s: teacherMs / 1000 },
    students: curves.map((c) => ({ name: c.name, final: c.points[c.points.length - 1], train_s: c.train_ms / 1000, curve: c.points })),
  };
  fs.writeFileSync(path.join(ROOT, 'bench/distill/results.json'), JSON.stringify(results, null, 2) + '\n');
  fs.writeFileSync(path.join(ROOT, 'docs/distillation.svg'), plot(curves, trueCe, teacherEval.ce_loss));
  fs.rmSync(tmp, { recursive: true, force: true });
  console.log(JSON.stringify({ true_ce: trueCe, teacher_ce: teacherEval.ce_loss, students: results.students.map((s) => ({ name: s.name, ce: s.final.ce, ppl: Math.exp(s.final.ce), kl: s.final.kl })) }, null, 2));
}

/** A hand-written SVG line plot: held-out CE vs training tokens, one line per student, with reference lines. */
function plot(curves: Curve[], trueCe: number, teacherCe: number): string {
  const W = 720;
  const H = 420;
  const m = { l: 60, r: 200, t: 30, b: 50 };
  const xs = curves.flatMap((c) => c.points.map((p) => p.tokens));
  const ys = [...curves.flatMap((c) => c.points.slice(1).map((p) => p.ce)), trueCe, teacherCe];
  const [x0, x1] = [0, Math.max(...xs)];
  const [y0, y1] = [Math.floor(Math.min(...ys) * 4) / 4, Math.ceil(Math.max(...ys) * 4) / 4];
  const X = (x: number) => m.l + ((x - x0) / (x1 - x0)) * (W - m.l - m.r);
  const Y = (y: number) => m.t + (1 - (Math.min(y, y1) - y0) / (y1 - y0)) * (H - m.t - m.b);
  const colors = ['#444444', '#e07b00', '#2a7fd4', '#1a9641', '#b2359e'];
  const out: string[] = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`, `<rect width="${W}" height="${H}" fill="white"/>`];
  for (let k = 0; k <= 5; k++) {
    const y = y0 + ((y1 - y0) * k) / 5;
    out.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${Y(y)}" y2="${Y(y)}" stroke="#ddd"/><text x="${m.l - 6}" y="${Y(y) + 4}" text-anchor="end">${y.toFixed(2)}</text>`);
    const x = x0 + ((x1 - x0) * k) / 5;
    out.push(`<text x="${X(x)}" y="${H - m.b + 16}" text-anchor="middle">${Math.round(x / 1000)}k</text>`);
  }
  out.push(`<line x1="${m.l}" x2="${m.l}" y1="${m.t}" y2="${H - m.b}" stroke="black"/><line x1="${m.l}" x2="${W - m.r}" y1="${H - m.b}" y2="${H - m.b}" stroke="black"/>`);
  out.push(`<text x="${(m.l + W - m.r) / 2}" y="${H - 10}" text-anchor="middle">student training tokens</text>`);
  out.push(`<text x="14" y="${(m.t + H - m.b) / 2}" text-anchor="middle" transform="rotate(-90 14 ${(m.t + H - m.b) / 2})">held-out cross-entropy (nats)</text>`);
  const ref = (y: number, label: string, dash: string) => out.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${Y(y)}" y2="${Y(y)}" stroke="#888" stroke-dasharray="${dash}"/><text x="${W - m.r + 6}" y="${Y(y) + 4}" fill="#666">${label} ${y.toFixed(3)}</text>`);
  ref(trueCe, 'source entropy', '2,3');
  ref(teacherCe, 'teacher', '6,3');
  curves.forEach((c, i) => {
    const pts = c.points.slice(1).map((p) => `${X(p.tokens).toFixed(1)},${Y(p.ce).toFixed(1)}`).join(' ');
    out.push(`<polyline fill="none" stroke="${colors[i % colors.length]}" stroke-width="2" points="${pts}"/>`);
    const last = c.points[c.points.length - 1];
    out.push(`<text x="${W - m.r + 6}" y="${m.t + 14 + 16 * i + 60}" fill="${colors[i % colors.length]}">${c.name}: ${last.ce.toFixed(3)}</text>`);
  });
  out.push(`<text x="${m.l}" y="18">Student (d 32, 2 layers) held-out CE — equal token budgets</text></svg>`);
  return out.join('\n') + '\n';
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
