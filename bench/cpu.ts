/**
 * CPU backend benchmark: the small Gemma 2 shaped model (bench/fixtures/gemma2-small/config.json, 35.7M
 * params, random weights) built from gemma2.model by the front end, as written (primitive attention) and
 * after the default pass pipeline (fused_attention: what `lapidary run` executes), side by side in one run
 * with onnxruntime-node on the ONNX export of the same architecture.
 * Run: `npm run bench:cpu` (builds, then `node dist/bench/cpu.js [--quick] [--no-tfjs-cpu]`).
 * Generated data (random safetensors, ONNX external data) goes to bench/.data/ (git-ignored).
 */
import * as fs from 'fs';
import * as path from 'path';
import { execFileSync } from 'child_process';
import { compileModel } from '../grammar';
import { Graph, nodeCost, getNode, concreteShape, DimEnv } from '../src/ir';
import { initCpuBackend, execute, tf, OpProfile, ParamStore, BackendKind, PackedParams } from '../src/backends/cpu';
import { generate } from '../src/backends/cpu/generate';
import { writeSafetensors, TensorData } from '../src/checkpoint';
import { loadParams } from '../src/checkpoint/load';
import { runPipeline, resolvePipeline } from '../src/passes';

const ROOT = path.resolve(__dirname, __dirname.includes(`${path.sep}dist${path.sep}`) ? '../..' : '..');
const FIX = path.join(ROOT, 'bench/fixtures/gemma2-small');
const DATA = path.join(ROOT, 'bench/.data');
const CK = path.join(DATA, 'gemma2-small');
const ONNX = path.join(DATA, 'onnx');
const quick = process.argv.includes('--quick');
const withTfjsCpu = !process.argv.includes('--no-tfjs-cpu');
const T = 128;

function log(s: string) {
  process.stdout.write(s + '\n');
}

/** Random N(0, 0.02)-ish weights (norm weights 0, i.e. scale 1) in safetensors, for the graph's params. */
function ensureCheckpoint(g: Graph): void {
  if (fs.existsSync(path.join(CK, 'model.safetensors'))) return;
  fs.mkdirSync(CK, { recursive: true });
  fs.copyFileSync(path.join(FIX, 'config.json'), path.join(CK, 'config.json'));
  let s = 1;
  const rnd = () => ((s = (s * 1103515245 + 12345) >>> 0) / 4294967296 - 0.5) * 0.07;
  const tensors: Record<string, TensorData> = {};
  for (const n of g.nodes) {
    if (n.op !== 'param') continue;
    const shape = n.type.shape as number[];
    const data = new Float32Array(shape.reduce((a, d) => a * d, 1));
    if (shape.length > 1) for (let i = 0; i < data.length; i++) data[i] = rnd();
    tensors[String(n.attrs.name)] = { dtype: 'F32', shape, data };
  }
  writeSafetensors(path.join(CK, 'model.safetensors'), tensors);
}

function ensureOnnx(): void {
  if (fs.existsSync(path.join(ONNX, 'model.onnx.data'))) return;
  fs.mkdirSync(ONNX, { recursive: true });
  for (const f of ['model.onnx', 'initializers.json']) fs.copyFileSync(path.join(FIX, f), path.join(ONNX, f));
  execFileSync(process.execPath, [path.join(FIX, 'make-data.js'), ONNX], { stdio: 'inherit' });
}

/** Forward FLOPs of a graph at concrete dims, by the IR cost model (XLA conventions: dense attention). */
function graphFlops(g: Graph, env: DimEnv): number {
  let f = 0;
  for (const n of g.nodes) {
    const t = (id: number) => ({ dtype: getNode(g, id).type.dtype, shape: concreteShape(getNode(g, id).type.shape, env) });
    f += nodeCost(n, n.inputs.map(t), t(n.id)).flops;
  }
  return f;
}

/**
 * Milliseconds per call: the fastest of `runs` timed calls after `warm` untimed ones. The machine is shared
 * (other processes take the cores at random), so the minimum is the best estimate of what the code costs;
 * every engine in the run is timed the same way.
 */
function timeIt(runs: number, warm: number, fn: () => void): number {
  for (let i = 0; i < warm; i++) fn();
  let best = Infinity;
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    fn();
    best = Math.min(best, performance.now() - t0);
  }
  return best;
}

function forwardMs(g: Graph, params: ParamStore, batch: number, runs: number, warm: number, o: { profile?: OpProfile; packed?: PackedParams } = {}): number {
  const ids = tf.tidy(() => tf.cast(tf.mul(tf.randomUniform([batch, T], 0, 8000), 1), 'int32'));
  const ms = timeIt(runs, warm, () => {
    const r = execute(g, { input_ids: ids }, params, o);
    r.outputs.logits.dataSync();
    r.outputs.logits.dispose();
  });
  ids.dispose();
  return ms;
}

/** tfjs matMul GFLOP/s at one of the model's Linear shapes (128×512 · 512×2048), weight kept across calls. */
function matmulPeak(): number {
  const a = tf.randomNormal([128, 512]);
  const b = tf.randomNormal([512, 2048]);
  // (not tf.tidy(() => x.dataSync()): tidy walks the returned typed array element by element)
  const ms = timeIt(quick ? 5 : 20, 2, () => {
    const c = tf.matMul(a, b);
    c.dataSync();
    c.dispose();
  });
  a.dispose();
  b.dispose();
  return (2 * 128 * 512 * 2048) / (ms / 1000);
}

/**
 * One Linear (x[M, 512] · W[2048, 512]ᵀ) three ways: tfjs's transposeB, (W·xᵀ)ᵀ (the lowering without packed
 * weights), and x·Wt with W pre-transposed once (what PackedParams gives). M = 128 (prefill) and 1 (decode).
 */
function linearLayouts(): Record<string, { transpose_b_ms: number; w_xT_T_ms: number; packed_ms: number }> {
  const out: Record<string, { transpose_b_ms: number; w_xT_T_ms: number; packed_ms: number }> = {};
  const w = tf.randomNormal([2048, 512]);
  const wt = tf.transpose(w);
  for (const M of [128, 1]) {
    const x = tf.randomNormal([M, 512]);
    const t = (f: () => tf.Tensor) => timeIt(quick ? 5 : 20, 2, () => { const y = f(); y.dataSync(); y.dispose(); });
    out[`M${M}`] = {
      transpose_b_ms: t(() => tf.matMul(x, w, false, true)),
      w_xT_T_ms: t(() => tf.tidy(() => tf.transpose(tf.matMul(w, tf.transpose(x))))),
      packed_ms: t(() => tf.matMul(x, wt)),
    };
    x.dispose();
  }
  w.dispose();
  wt.dispose();
  return out;
}

const share = (prof: OpProfile) => {
  const total = [...prof.values()].reduce((s, e) => s + e.ms, 0);
  return [...prof.entries()].sort((a, b) => b[1].ms - a[1].ms).map(([k, e]) => ({ op: k, ms: +e.ms.toFixed(1), calls: e.calls, share: +(e.ms / total).toFixed(3) }));
};
const fmtShare = (prof: OpProfile) => share(prof).slice(0, 7).map((e) => `${e.op} ${(100 * e.share).toFixed(0)}%`).join(', ');

async function onnxForwardMs(threads: number): Promise<number | string> {
  let ort: typeof import('onnxruntime-node');
  try {
    ort = await import('onnxruntime-node');
  } catch (e) {
    return `onnxruntime-node not installed (${(e as Error).message.split('\n')[0]})`;
  }
  const sess = await ort.InferenceSession.create(path.join(ONNX, 'model.onnx'), { intraOpNumThreads: threads, graphOptimizationLevel: 'all' });
  const ids = new ort.Tensor('int64', BigInt64Array.from({ length: T }, (_, i) => BigInt((i * 37) % 8192)), [1, T]);
  const run = async () => {
    await sess.run({ [sess.inputNames[0]]: ids });
  };
  for (let i = 0; i < 3; i++) await run();
  let ms = Infinity;
  for (let i = 0; i < (quick ? 5 : 20); i++) {
    const t0 = performance.now();
    await run();
    ms = Math.min(ms, performance.now() - t0);
  }
  await sess.release();
  return ms;
}

async function main() {
  const config = JSON.parse(fs.readFileSync(path.join(FIX, 'config.json'), 'utf8'));
  const src = fs.readFileSync(path.join(ROOT, 'gemma2.model'), 'utf8');
  const c = compileModel(src, 'gemma2.model', { config });
  if (!c.graph) throw new Error(c.diagnostics.map((d) => d.message).join('\n'));
  const g = c.graph;
  const fused = runPipeline(g, resolvePipeline()).graph; // what `lapidary run` executes
  ensureCheckpoint(g);
  ensureOnnx();
  const flops1 = graphFlops(g, { batch: 1, seq: T });
  const fusedFlops1 = graphFlops(fused, { batch: 1, seq: T });
  const results: Record<string, unknown> = {
    machine: `${require('os').cpus().length}-core ${process.arch}, Node ${process.version}`,
    loadavg_at_start: require('os').loadavg().map((x: number) => +x.toFixed(2)),
    T,
    flops_forward_b1: flops1,
    flops_forward_b1_fused_band: fusedFlops1,
  };
  log(`model: gemma2-small (${config.num_hidden_layers} layers, d ${config.hidden_size}, vocab ${config.vocab_size}); forward FLOPs at B=1, T=${T}: ${(flops1 / 1e9).toFixed(2)} G dense (${(fusedFlops1 / 1e9).toFixed(2)} G band-only after the passes)`);
  log(`machine: ${results.machine}, load average ${(results.loadavg_at_start as number[]).join(' ')}`);
  const gflops = (f: number, ms: number) => ((f / ms) * 1e-6).toFixed(1);

  for (const kind of (withTfjsCpu ? ['wasm', 'cpu'] : ['wasm']) as BackendKind[]) {
    await initCpuBackend(kind);
    const params = loadParams(g, CK);
    const packed = new PackedParams();
    const peak = matmulPeak();
    const slow = kind === 'cpu';
    const runs = quick || slow ? 1 : 5;
    const r: Record<string, unknown> = { matmul_peak_gflops: peak / 1e9 };
    log(`\ntfjs ${kind}: matMul 128x512·512x2048 ${(peak / 1e9).toFixed(1)} GFLOP/s`);
    if (!slow) {
      const lin = linearLayouts();
      r.linear_layouts = lin;
      for (const [m, e] of Object.entries(lin)) log(`  Linear ${m.slice(1)}x512·(2048x512)ᵀ: transposeB ${e.transpose_b_ms.toFixed(2)} ms, (W·xᵀ)ᵀ ${e.w_xT_T_ms.toFixed(2)} ms, pre-transposed ${e.packed_ms.toFixed(2)} ms`);
    }
    const bf1 = forwardMs(fused, params, 1, runs, 1, { packed });
    r.forward_b1_fused_ms = bf1;
    log(`  forward B=1 T=${T}, default pipeline (fused_attention, weights pre-transposed): ${bf1.toFixed(1)} ms (${gflops(flops1, bf1)} GFLOP/s dense-equivalent, ${((T / bf1) * 1000).toFixed(0)} tokens/s)`);
    if (!slow) {
      const bf4 = forwardMs(fused, params, 4, quick ? 1 : 3, 1, { packed });
      const bfu = forwardMs(fused, params, 1, runs, 1);
      const b1 = forwardMs(g, params, 1, runs, 1, { packed });
      const b4 = forwardMs(g, params, 4, quick ? 1 : 3, 1, { packed });
      Object.assign(r, { forward_b4_fused_ms: bf4, forward_b1_fused_unpacked_ms: bfu, forward_b1_primitive_ms: b1, forward_b4_primitive_ms: b4 });
      log(`  forward B=4 T=${T}, default pipeline: ${bf4.toFixed(1)} ms (${gflops(4 * flops1, bf4)} GFLOP/s, ${((4 * T) / bf4 * 1000).toFixed(0)} tokens/s)`);
      log(`  forward B=1, default pipeline, weights not pre-transposed: ${bfu.toFixed(1)} ms`);
      log(`  forward B=1 / B=4, primitive graph (--passes ''): ${b1.toFixed(1)} / ${b4.toFixed(1)} ms`);
      const profF: OpProfile = new Map();
      forwardMs(fused, params, 1, 1, 0, { packed, profile: profF });
      const profP: OpProfile = new Map();
      forwardMs(g, params, 1, 1, 0, { packed, profile: profP });
      r.profile_fused_b1 = share(profF);
      r.profile_primitive_b1 = share(profP);
      log(`  time per op kind, B=1, default pipeline: ${fmtShare(profF)}`);
      log(`  time per op kind, B=1, primitive graph: ${fmtShare(profP)}`);
      const prompt = Array.from({ length: 64 }, (_, i) => (i * 37) % 8192);
      const n = quick ? 8 : 32;
      const cached = generate(fused, params, prompt, { maxNewTokens: n + 1, packed });
      const full = generate(fused, params, prompt, { maxNewTokens: quick ? 3 : 9, cache: false, packed });
      const cacheMs = cached.decodeMs / n;
      const fullMs = full.decodeMs / (full.newIds.length - 1);
      r.decode = { prompt: 64, cached_ms_per_token: cacheMs, recompute_ms_per_token: fullMs, speedup: fullMs / cacheMs, same_tokens: cached.newIds.slice(0, full.newIds.length).join() === full.newIds.join() };
      log(`  decode after a 64-token prompt: KV cache ${cacheMs.toFixed(1)} ms/token (${(1000 / cacheMs).toFixed(0)} tokens/s), recompute ${fullMs.toFixed(1)} ms/token: ${(fullMs / cacheMs).toFixed(1)}× faster; same greedy tokens: ${(r.decode as { same_tokens: boolean }).same_tokens}`);
    }
    results[`tfjs_${kind}`] = r;
    packed.dispose();
    params.forEach((t) => t.dispose());
  }
  // onnxruntime last: its intra-op threads spin-wait and slowed the tfjs runs that followed it.
  const ort2 = await onnxForwardMs(2);
  const ort1 = await onnxForwardMs(1);
  results.onnxruntime = { threads2_ms: ort2, threads1_ms: ort1 };
  log(`\nonnxruntime-node 1.30, B=1: ${typeof ort2 === 'number' ? `${ort2.toFixed(1)} ms (2 threads, ${gflops(flops1, ort2)} GFLOP/s), ${(ort1 as number).toFixed(1)} ms (1 thread, ${gflops(flops1, ort1 as number)} GFLOP/s)` : ort2}`);
  for (const kind of ['wasm', 'cpu']) {
    const r = results[`tfjs_${kind}`] as { forward_b1_fused_ms: number; forward_b1_primitive_ms?: number } | undefined;
    if (!r || typeof ort2 !== 'number') continue;
    const vs = (ms: number) => `${(ms / ort2).toFixed(2)}× (2 threads), ${(ms / (ort1 as number)).toFixed(2)}× (1 thread)`;
    log(`tfjs ${kind} forward B=1 / onnxruntime: default pipeline ${vs(r.forward_b1_fused_ms)}${r.forward_b1_primitive_ms ? `; primitive graph ${vs(r.forward_b1_primitive_ms)}` : ''}`);
  }
  results.loadavg_at_end = require('os').loadavg().map((x: number) => +x.toFixed(2));

  fs.writeFileSync(path.join(DATA, 'cpu-results.json'), JSON.stringify(results, null, 2));
  log(`\nresults: ${path.relative(ROOT, path.join(DATA, 'cpu-results.json'))}`);
}

main().catch((e) => {
  process.stderr.write(`${e.stack ?? e}\n`);
  process.exitCode = 1;
});
