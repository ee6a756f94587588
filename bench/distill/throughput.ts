/**
 * Training-step throughput on the CPU backend, with the breakdown forward / backward / optimizer, and the
 * activation memory of each rematerialisation policy.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/distill/throughput.js [wasm|cpu]
 *
 * forward = the loss graph alone; optimizer = an AdamW-only graph (gradients fed as inputs); backward = full
 * step − forward − optimizer. Each timing is the fastest of 5 runs after 1 warm-up (the machine is shared; interference only adds time).
 */
import * as fs from 'fs';
import * as path from 'path';
import { compileModel } from '../../grammar';
import { initCpuBackend, execute, tf, BackendKind } from '../../src/backends/cpu';
import { distillationLoss, trainingStep, peakLiveBytes, livePeak, REMAT_POLICIES, shiftLabels, appendAdamW } from '../../src/train';
import { initParams } from '../../src/train/ckpt';
import { zeroState } from '../../src/train/trainer';
import { Graph, GraphBuilder, NodeId } from '../../src/ir';

const ROOT = process.env.LAPIDARY_ROOT ?? path.join(__dirname, '../../..');
/** The minimum over runs: the machine is shared, and interference only ever adds time. */
const best = (xs: number[]) => Math.min(...xs);

let REPS = 6;
function time(g: Graph, feeds: Record<string, tf.Tensor>, params: Map<string, tf.Tensor>): number {
  const ts: number[] = [];
  for (let i = 0; i < REPS; i++) {
    const t0 = performance.now();
    const r = execute(g, feeds, params);
    for (const t of Object.values(r.outputs)) {
      t.dataSync();
      t.dispose();
    }
    if (i >= 1) ts.push(performance.now() - t0);
  }
  return best(ts);
}

async function main() {
  const kind = (process.argv[2] ?? 'wasm') as BackendKind;
  await initCpuBackend(kind);
  const source = fs.readFileSync(path.join(ROOT, 'gemma2.model'), 'utf8');
  const cases = [
    { name: 'tiny (tests/fixtures/gemma2-tiny)', config: path.join(ROOT, 'tests/fixtures/gemma2-tiny/config.json'), batch: 4, seq: 64, reps: 6 },
    { name: 'small (35.7M params)', config: path.join(ROOT, 'bench/distill/gemma2-small-config.json'), batch: 1, seq: 128, reps: 4 },
  ];
  const rows: Record<string, unknown>[] = [];
  for (const c of cases) {
    REPS = c.reps;
    const config = JSON.parse(fs.readFileSync(c.config, 'utf8'));
    const r = compileModel(source, 'gemma2.model', { config, dims: { batch: c.batch, seq: c.seq } });
    const g = r.graph!;
    const params = initParams(g, 1, 0.02);
    const V = config.vocab_size;
    const ids = Int32Array.from({ length: c.batch * c.seq }, (_, i) => (i * 7919) % V);
    const feeds: Record<string, tf.Tensor> = { input_ids: tf.tensor(ids, [c.batch, c.seq], 'int32'), labels: tf.tensor(shiftLabels(ids, c.batch, c.seq), [c.batch, c.seq], 'int32') };
    const fwd = time(distillationLoss(g), feeds, params);
    const grads = trainingStep(g, { optimizer: false });
    const fb = time(grads.graph, feeds, params);
    const step = trainingStep(g, {});
    const st = zeroState(params);
    const full = { ...feeds, step: tf.scalar(1), lr: tf.scalar(1e-3) } as Record<string, tf.Tensor>;
    for (const [k, t] of st.m) full[`adam.m.${k}`] = t;
    for (const [k, t] of st.v) full[`adam.v.${k}`] = t;
    const all = time(step.graph, full, params);
    // AdamW alone: the same update ops, with the gradients as inputs.
    const ob = new GraphBuilder('adamw');
    const pids = new Map<string, NodeId>();
    const gids = new Map<string, NodeId>();
    for (const n of g.nodes) {
      if (n.op !== 'param') continue;
      const name = String(n.attrs.name);
      pids.set(name, ob.param(name, n.type));
      gids.set(name, ob.input(`grad.${name}`, n.type));
    }
    const og = ob.build({ outputs: appendAdamW(ob, pids, gids, {}) });
    const ofeeds = { ...full } as Record<string, tf.Tensor>;
    for (const [k, t] of params) ofeeds[`grad.${k}`] = t;
    const opt = time(og, ofeeds, params);
    const tokens = c.batch * c.seq;
    const remat: Record<string, unknown> = {};
    for (const p of REMAT_POLICIES) {
      const s = trainingStep(g, { optimizer: false, remat: p });
      // transient = the peak without the step's outputs (the gradients: param-sized under every policy)
      const tr = livePeak(s.graph, {}, { excludeOutputs: true });
      const at = s.graph.nodes.find((n) => n.id === tr.at)!;
      remat[p] = {
        saved_MB: +(s.savedBytes() / 1e6).toFixed(2),
        peak_live_MB: +(peakLiveBytes(s.graph) / 1e6).toFixed(2),
        transient_peak_MB: +(tr.bytes / 1e6).toFixed(2),
        transient_peak_at: `${at.op} in '${at.scope}' (${at.id < s.forwardEnd ? 'forward' : 'backward'})`,
        recomputed_nodes: s.recomputed,
        ms: +time(s.graph, feeds, params).toFixed(1),
      };
    }
    const row = {
      model: c.name,
      backend: kind,
      batch: c.batch,
      seq: c.seq,
      step_ms: +all.toFixed(1),
      tokens_per_s: +((tokens / all) * 1000).toFixed(1),
      forward_ms: +fwd.toFixed(1),
      backward_ms: +(all - fwd - opt).toFixed(1),
      optimizer_ms: +opt.toFixed(1),
      forward_plus_backward_graph_ms: +fb.toFixed(1),
      nodes: { forward: g.nodes.length, step: step.graph.nodes.length },
      remat,
    };
    console.log(JSON.stringify(row));
    rows.push(row);
    params.forEach((t) => t.dispose());
    st.m.forEach((t) => t.dispose());
    st.v.forEach((t) => t.dispose());
    Object.values(feeds).forEach((t) => t.dispose());
  }
  fs.writeFileSync(path.join(ROOT, `bench/distill/throughput-${kind}.json`), JSON.stringify(rows, null, 2) + '\n');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
