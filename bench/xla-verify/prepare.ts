/**
 * Writes what ../shared/device/verify_xla.py needs to check the TPU backend's programs with real XLA:
 *   tiny.mlir / tiny.hlo            the gemma2-tiny forward (batch 2, seq 12, f32), unpartitioned
 *   tiny_fns.mlir / tiny_fns.hlo    the same with repeated layers printed as functions (layers 1 and 3: one function)
 *   in.safetensors                  its arguments arg0.. (input_ids, positions, then the checkpoint's params)
 *   logits.safetensors              out0 = the Hugging Face logits from tests/fixtures/gemma2-tiny/reference.json
 *   sharded.mlir                    the same program with mhlo.sharding for mesh data=2,model=4 (8 partitions)
 *   partitioned.mlir / .hlo         the per-device program with explicit collectives (8 partitions, {manual}); this and
 *                                   every program below that comes from emitPrograms / compileTpu has layer functions
 *   partitioned_specs.json         how each argument is split (run_partitioned.py feeds each device its shards)
 *   cost.json                       our own FLOP / transcendental / byte counts of tiny.mlir
 * and the training step (forward after the pass pipeline → cross-entropy → backward → AdamW, f32, batch 2 × 12):
 *   train.mlir / train_highest.mlir the whole step, unpartitioned (HIGHEST: exact fp32 matmuls on a GPU)
 *   train_fns.mlir / .hlo           the whole step with layer functions (inputs / expected as train.mlir)
 *   train_bf16.mlir                 the step in bf16 with the optimizer in f32 (the default emission; run_bf16.py,
 *                                   with train_names.json: the output names)
 *   train_in.safetensors            its arguments (input_ids, positions, labels, step, lr, Adam m/v, master weights, then params)
 *   train_expected.safetensors      out0.. = every output computed by the CPU backend (loss, ce_loss, grad_norm,
 *                                   the new params and moments)
 *   train_sharded.mlir              the step with mhlo.sharding for mesh data=2,model=4 (XLA's SPMD partitioner)
 *   train_partitioned.mlir (+ train_partitioned_specs.json)  our per-device step on data=2,model=4 (reduce-scatter
 *                                   of gradients); train_m4_* (model=4) and train_d2m2_* (data=2,model=2) likewise
 *   train_cost.json                 our FLOP / transcendental counts of train.mlir
 * and the decode step (one token against KV caches that are arguments and results; context 12, position 6):
 *   decode.mlir / decode.hlo        unpartitioned; decode_in / decode_expected.safetensors (logits and new caches,
 *                                   from the CPU backend after steps 0..5 — its logits equal Hugging Face's)
 *   decode_sharded.mlir             with mhlo.sharding for data=2,model=2 (4 partitions)
 *   decode_partitioned.mlir (+ decode_partitioned_specs.json)  our per-device step (run_partitioned.py DIR decode_)
 *   decode_cost.json                our FLOP / transcendental counts of decode.mlir
 * Usage (repo root): npx esbuild --bundle --platform=node bench/xla-verify/prepare.ts --outfile=/tmp/prep.js && node /tmp/prep.js OUTDIR
 */
import * as fs from 'fs';
import * as path from 'path';
import '../../src/ir';
import { compileModel } from '../../grammar';
import { openCheckpoint, readTensor, writeSafetensors, TensorData } from '../../src/checkpoint';
import { runPipeline, resolvePipeline } from '../../src/passes';
import { shiftLabels } from '../../src/train/loss';
import { execute, initCpuBackend, tf } from '../../src/backends/cpu';
import {
  buildTrainingStep, compileTpu, CostRecorder, Instr, Outliner, decodeStep, HloPrinter, StableHloPrinter, emitPrograms, emitWholeProgram, fusedBytes, getChip, makeMesh, parseStrategy, parseTopology, partitionGraph, sourceNodes,
} from '../../src/backends/tpu';

const out = process.argv[2] ?? 'out/xla-verify';
fs.mkdirSync(out, { recursive: true });
const fx = path.join('tests', 'fixtures', 'gemma2-tiny');
const config = JSON.parse(fs.readFileSync(path.join(fx, 'config.json'), 'utf8'));
const ref = JSON.parse(fs.readFileSync(path.join(fx, 'reference.json'), 'utf8'));
const [B, T] = [ref.input_ids.length, ref.input_ids[0].length];
const r = compileModel(fs.readFileSync('gemma2.model', 'utf8'), 'gemma2.model', { config, dims: { batch: B, seq: T } });
if (!r.graph) throw new Error(JSON.stringify(r.diagnostics));
const g = r.graph;
const env = {};

// Unpartitioned programs.
const sp = new StableHloPrinter({ name: 'gemma2_tiny', numPartitions: 1 });
fs.writeFileSync(path.join(out, 'tiny.mlir'), sp.finish(emitWholeProgram(g, sp, { env })));
const sh = new StableHloPrinter({ name: 'gemma2_tiny', numPartitions: 1, precision: 'HIGHEST' });
fs.writeFileSync(path.join(out, 'tiny_highest.mlir'), sh.finish(emitWholeProgram(g, sh, { env })));
const hp = new HloPrinter({ name: 'gemma2_tiny', numPartitions: 1 });
fs.writeFileSync(path.join(out, 'tiny.hlo'), hp.finish(emitWholeProgram(g, hp, { env })));
// The same with repeated layers as functions (what `compile --target tpu` prints by default; layers 1 and 3 are one).
writeWithFunctions(g, 'gemma2_tiny', 'tiny_fns');

/** `<file>.mlir` / `<file>.hlo`: the whole program of `graph` printed through the outliner (layer functions). */
function writeWithFunctions(graph: typeof g, name: string, file: string): void {
  const rec = new Outliner();
  const outs = emitWholeProgram(graph, rec, { env });
  const m = new StableHloPrinter({ name, numPartitions: 1 });
  fs.writeFileSync(path.join(out, `${file}.mlir`), m.finish(rec.print(m, outs)));
  const h = new HloPrinter({ name, numPartitions: 1 });
  fs.writeFileSync(path.join(out, `${file}.hlo`), h.finish(rec.print(h, outs)));
}

// Arguments in program order.
const ck = openCheckpoint(path.join(fx, 'model.safetensors'));
const args: Record<string, TensorData> = {};
sourceNodes(g).forEach((n, i) => {
  const name = String(n.attrs.name);
  const shape = n.type.shape as number[];
  let data: Float32Array | Int32Array;
  if (name === 'input_ids') data = Int32Array.from(ref.input_ids.flat());
  else if (name === 'positions') data = Int32Array.from([...Array(T).keys()]);
  else data = readTensor(ck.tensors.get(name)!);
  args[`arg${i}`] = { dtype: n.type.dtype === 'i32' ? 'I32' : 'F32', shape, data };
});
writeSafetensors(path.join(out, 'in.safetensors'), args);
writeSafetensors(path.join(out, 'logits.safetensors'), { out0: { dtype: 'F32', shape: [B, T, config.vocab_size], data: Float32Array.from(ref.logits.flat(2)) } });

// 8-way: whole program with shardings, and the per-device program.
const mesh = makeMesh(parseTopology(getChip('v5e'), '2x4'), 'data=2,model=4');
const s = parseStrategy('fsdp+tp', mesh);
const p = emitPrograms(g, mesh, s.policy);
fs.writeFileSync(path.join(out, 'sharded.mlir'), p.wholeMlir);
fs.writeFileSync(path.join(out, 'sharded.hlo'), p.wholeHlo);
fs.writeFileSync(path.join(out, 'partitioned.mlir'), p.partitionedMlir);
fs.writeFileSync(path.join(out, 'partitioned.hlo'), p.partitionedHlo);

// The specs to cut the real inputs into per-device shards for partitioned.mlir (run_partitioned.py).
{
  const pr = partitionGraph(g, mesh, s.policy, new CostRecorder(), { env }, p.paramSpecs);
  const specs = sourceNodes(g).map((n) => (n.op === 'input' ? pr.inputSpecs : pr.paramSpecs).get(String(n.attrs.name)));
  fs.writeFileSync(
    path.join(out, 'partitioned_specs.json'),
    JSON.stringify({ mesh: mesh.axes.map((a) => [a.name, a.size]), args: specs, outputs: pr.outputs.map((o) => o.spec) }) + '\n',
  );
}

/** FLOPs (all, and in dots) and transcendentals of recorded instructions: what XLA's HloCostAnalysis reports. */
function counts(instrs: readonly Instr[]): { flops: number; dot_flops: number; transcendentals: number } {
  let [flops, dot, tr] = [0, 0, 0];
  for (const i of instrs) {
    flops += i.mxuFlops + i.vpuFlops;
    dot += i.mxuFlops;
    tr += i.transcendentals;
  }
  return { flops, dot_flops: dot, transcendentals: tr };
}

// Our cost numbers of the unpartitioned module (HloCostAnalysis conventions; f32).
const rec = new CostRecorder();
const outs = emitWholeProgram(g, rec, { env });
const bytes = fusedBytes(rec.instrs, outs.map((o) => Number(o.value.ref.slice(2))));
const instrs = rec.instrs.toArray();
const unfused = instrs.reduce((a, i) => a + (i.cls === 'arg' ? 0 : i.outBytes + i.operands.reduce((b, o) => b + instrs[o].outBytes, 0)), 0);
const cost = {
  ...counts(instrs),
  bytes_accessed_unfused: unfused,
  bytes_accessed_fused: bytes.reduce((a, b) => a + b, 0),
};
fs.writeFileSync(path.join(out, 'cost.json'), JSON.stringify(cost, null, 1) + '\n');
console.log(JSON.stringify({ out, args: Object.keys(args).length, cost }));

// ---------- the training step ----------
async function trainStep(): Promise<void> {
  await initCpuBackend('cpu');
  const fg = runPipeline(g, resolvePipeline({})).graph;
  const step = buildTrainingStep(fg, 'layer-inputs');
  const sg = step.graph;
  let seed = 12345;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  const ids = Int32Array.from(ref.input_ids.flat());
  const feeds: Record<string, TensorData> = {};
  const params = new Map<string, tf.Tensor>();
  const targs: Record<string, TensorData> = {};
  sourceNodes(sg).forEach((n, i) => {
    const name = String(n.attrs.name);
    const shape = n.type.shape as number[];
    const size = shape.reduce((a, b) => a * b, 1);
    let data: Float32Array | Int32Array;
    if (name === 'input_ids') data = ids;
    else if (name === 'positions') data = Int32Array.from([...Array(T).keys()]);
    else if (name === 'labels') data = shiftLabels(ids, B, T);
    else if (name === 'step') data = Float32Array.from([3]);
    else if (name === 'lr') data = Float32Array.from([1e-3]);
    // Moments as after a few steps (well-conditioned updates: m / sqrt(v) is not a sign of a near-zero gradient).
    else if (name.startsWith('adam.m.')) data = Float32Array.from({ length: size }, () => (rand() - 0.5) * 2e-3);
    else if (name.startsWith('adam.v.')) data = Float32Array.from({ length: size }, () => 1e-6 + rand() * 1e-6);
    // fp32 master weights (--precision mixed): the checkpoint's f32 values, equal to the weights of this f32 step.
    else if (name.startsWith('master.')) data = readTensor(ck.tensors.get(name.slice('master.'.length))!) as Float32Array;
    else data = readTensor(ck.tensors.get(name)!) as Float32Array;
    const td: TensorData = { dtype: n.type.dtype === 'i32' ? 'I32' : 'F32', shape, data };
    targs[`arg${i}`] = td;
    if (n.op === 'param') params.set(name, tf.tensor(data, shape, 'float32'));
    else feeds[name] = td;
  });
  const tfFeeds: Record<string, tf.Tensor> = {};
  for (const [k, v] of Object.entries(feeds)) tfFeeds[k] = tf.tensor(v.data as Float32Array | Int32Array, [...v.shape], v.dtype === 'I32' ? 'int32' : 'float32');
  const r = execute(sg, tfFeeds, params);
  const expected: Record<string, TensorData> = {};
  const summary: Record<string, number> = {};
  sg.outputs.forEach((o, i) => {
    const t = r.outputs[o.name];
    expected[`out${i}`] = { dtype: 'F32', shape: [...t.shape], data: Float32Array.from(t.dataSync()) };
    if (t.size === 1) summary[o.name] = t.dataSync()[0];
  });
  writeSafetensors(path.join(out, 'train_in.safetensors'), targs);
  writeSafetensors(path.join(out, 'train_expected.safetensors'), expected);
  const name = 'gemma2_tiny_train_step';
  const w = new StableHloPrinter({ name, numPartitions: 1 });
  fs.writeFileSync(path.join(out, 'train.mlir'), w.finish(emitWholeProgram(sg, w, { env })));
  const wh = new StableHloPrinter({ name, numPartitions: 1, precision: 'HIGHEST' });
  fs.writeFileSync(path.join(out, 'train_highest.mlir'), wh.finish(emitWholeProgram(sg, wh, { env })));
  writeWithFunctions(sg, name, 'train_fns');
  // The step as `compile --mode train` emits it by default: bf16 weights, activations and gradients, the optimizer
  // with its moments and master weights in f32 (run_bf16.py casts train_in to each argument's dtype).
  const wb = new StableHloPrinter({ name, numPartitions: 1 });
  fs.writeFileSync(path.join(out, 'train_bf16.mlir'), wb.finish(emitWholeProgram(sg, wb, { env, floatDtype: 'bf16' })));
  fs.writeFileSync(path.join(out, 'train_names.json'), JSON.stringify(sg.outputs.map((o) => o.name)) + '\n');
  const c = compileTpu(fg, mesh, s, { chip: 'v5e', mode: 'train', remat: 'layer-inputs' }, { batch: B, seq: T }, { emit: true });
  fs.writeFileSync(path.join(out, 'train_sharded.mlir'), c.programs!.wholeMlir);
  // Our per-device step: train_ on data=2,model=4 (8 devices), train_m4_ on model=4 (4 devices) — the meshes with
  // more model shards than the tiny model's 2 K/V heads, where the backward was wrong before (now fixed; the
  // SPMD simulator in tests/tpu/simulate.test.ts checks the same programs on this machine) — and train_d2m2_ on
  // data=2,model=2. run_partitioned.py DIR PREFIX reads PREFIX{partitioned.mlir,partitioned_specs.json,in,expected}.
  for (const [pre, meshText, topo] of [['train_', 'data=2,model=4', '2x4'], ['train_m4_', 'model=4', '2x2'], ['train_d2m2_', 'data=2,model=2', '2x2']]) {
    const m = makeMesh(parseTopology(getChip('v5e'), topo), meshText);
    const cm = compileTpu(fg, m, parseStrategy(meshText.includes('data') ? 'fsdp+tp' : 'tp', m), { chip: 'v5e', mode: 'train', remat: 'layer-inputs' }, { batch: B, seq: T }, { emit: true });
    fs.writeFileSync(path.join(out, `${pre}partitioned.mlir`), cm.programs!.partitionedMlir);
    const pr = cm.partition;
    const specOf = (n: (typeof sg.nodes)[number]) => (n.op === 'input' ? pr.inputSpecs : pr.paramSpecs).get(String(n.attrs.name));
    fs.writeFileSync(
      path.join(out, `${pre}partitioned_specs.json`),
      JSON.stringify({ mesh: m.axes.map((a) => [a.name, a.size]), args: sourceNodes(cm.program).map(specOf), outputs: pr.outputs.map((o) => o.spec) }) + '\n',
    );
    if (pre !== 'train_') {
      fs.copyFileSync(path.join(out, 'train_in.safetensors'), path.join(out, `${pre}in.safetensors`));
      fs.copyFileSync(path.join(out, 'train_expected.safetensors'), path.join(out, `${pre}expected.safetensors`));
    }
  }
  const rec = new CostRecorder();
  emitWholeProgram(sg, rec, { env });
  const tinstrs = rec.instrs.toArray();
  const tcost = {
    ...counts(tinstrs),
    nodes: sg.nodes.length,
    outputs: sg.outputs.length,
  };
  fs.writeFileSync(path.join(out, 'train_cost.json'), JSON.stringify(tcost, null, 1) + '\n');
  console.log(JSON.stringify({ train: { args: Object.keys(targs).length, outputs: sg.outputs.length, ...summary, cost: tcost, collectives: c.plan.collectives.map((x) => `${x.kind}/${x.axes}`) } }));
}
// ---------- the decode step ----------
// The one-token step with KV caches in and out (context T; the local layers' ring buffers of 4 positions wrap),
// at position 6: its caches come from running steps 0..5 on the CPU backend; expected = every output at step 6.
async function decode(): Promise<void> {
  const one = compileModel(fs.readFileSync('gemma2.model', 'utf8'), 'gemma2.model', { config, dims: { batch: B, seq: 1 } }).graph!;
  const dg = decodeStep(runPipeline(one, resolvePipeline({})).graph, { context: T }).graph;
  const params = new Map<string, tf.Tensor>();
  for (const n of dg.nodes) if (n.op === 'param') params.set(String(n.attrs.name), tf.tensor(readTensor(ck.tensors.get(String(n.attrs.name))!) as Float32Array, n.type.shape as number[]));
  const at = 6;
  let caches = new Map<string, Float32Array>();
  let args: Record<string, TensorData> = {};
  let expected: Record<string, TensorData> = {};
  for (let t = 0; t <= at; t++) {
    args = {};
    const feeds: Record<string, tf.Tensor> = {};
    sourceNodes(dg).forEach((n, i) => {
      const name = String(n.attrs.name);
      const shape = n.type.shape as number[];
      let data: Float32Array | Int32Array;
      if (name === 'input_ids') data = Int32Array.from(ref.input_ids.map((row: number[]) => row[t]));
      else if (name === 'positions') data = Int32Array.from([t]);
      else if (name.startsWith('cache.')) data = caches.get(name) ?? new Float32Array(shape.reduce((a, b) => a * b, 1));
      else data = readTensor(ck.tensors.get(name)!) as Float32Array;
      args[`arg${i}`] = { dtype: n.type.dtype === 'i32' ? 'I32' : 'F32', shape, data };
      if (n.op === 'input') feeds[name] = tf.tensor(data, shape, n.type.dtype === 'i32' ? 'int32' : 'float32');
    });
    const r = execute(dg, feeds, params);
    expected = {};
    caches = new Map();
    dg.outputs.forEach((o, i) => {
      const d = Float32Array.from(r.outputs[o.name].dataSync());
      expected[`out${i}`] = { dtype: 'F32', shape: [...r.outputs[o.name].shape], data: d };
      if (o.name.startsWith('cache.')) caches.set(o.name, d);
      r.outputs[o.name].dispose();
    });
    for (const f of Object.values(feeds)) f.dispose();
  }
  writeSafetensors(path.join(out, 'decode_in.safetensors'), args);
  writeSafetensors(path.join(out, 'decode_expected.safetensors'), expected);
  const w = new StableHloPrinter({ name: 'gemma2_tiny_decode', numPartitions: 1 });
  fs.writeFileSync(path.join(out, 'decode.mlir'), w.finish(emitWholeProgram(dg, w, { env })));
  const wh = new HloPrinter({ name: 'gemma2_tiny_decode', numPartitions: 1 });
  fs.writeFileSync(path.join(out, 'decode.hlo'), wh.finish(emitWholeProgram(dg, wh, { env })));
  // data=2,model=2 (4 devices): caches split by batch and K/V heads; XLA's partitioner and our per-device program.
  const m = makeMesh(parseTopology(getChip('v5e'), '2x2'), 'data=2,model=2');
  const ds = parseStrategy('dp+tp', m);
  const p = emitPrograms(dg, m, ds.policy);
  fs.writeFileSync(path.join(out, 'decode_sharded.mlir'), p.wholeMlir);
  fs.writeFileSync(path.join(out, 'decode_partitioned.mlir'), p.partitionedMlir);
  const pr = partitionGraph(dg, m, ds.policy, new CostRecorder(), { env }, p.paramSpecs);
  const specs = sourceNodes(dg).map((n) => (n.op === 'input' ? pr.inputSpecs : pr.paramSpecs).get(String(n.attrs.name)));
  fs.writeFileSync(path.join(out, 'decode_partitioned_specs.json'), JSON.stringify({ mesh: m.axes.map((a) => [a.name, a.size]), args: specs, outputs: pr.outputs.map((o) => o.spec) }) + '\n');
  for (const t of params.values()) t.dispose();
  // Our counts of decode.mlir (verify_xla.py --cost gives XLA's).
  const drec = new CostRecorder();
  emitWholeProgram(dg, drec, { env });
  const dinstrs = drec.instrs.toArray();
  const dcost = {
    ...counts(dinstrs),
  };
  fs.writeFileSync(path.join(out, 'decode_cost.json'), JSON.stringify(dcost, null, 1) + '\n');
  console.log(JSON.stringify({ decode: { args: Object.keys(args).length, outputs: dg.outputs.length, position: at, cost: dcost } }));
}
trainStep()
  .then(decode)
  .catch((e) => {
    console.error(e);
    process.exit(1);
  });
