/**
 * Where the time of a training step goes, per node kind: every op's CPU lowering is wrapped with a timer
 * (the registry's own `cpu` functions, for this process only), and the time is summed by phase (forward +
 * loss / backward / optimizer, from the step's node-id boundaries) and by signature (op, attributes, operand
 * shapes). The executor's own `profile` option gives the same totals per op name; this splits them further.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/distill/profile.js [tiny|small] [wasm|cpu] [top]
 */
import * as fs from 'fs';
import * as path from 'path';
import { compileModel } from '../../grammar';
import { initCpuBackend, execute, tf, BackendKind } from '../../src/backends/cpu';
import { trainingStep, shiftLabels } from '../../src/train';
import { initParams } from '../../src/train/ckpt';
import { zeroState } from '../../src/train/trainer';
import { allOps, Node } from '../../src/ir';

const ROOT = process.env.LAPIDARY_ROOT ?? path.join(__dirname, '../../..');
const CONFIGS: Record<string, { config: string; batch: number; seq: number }> = {
  tiny: { config: 'tests/fixtures/gemma2-tiny/config.json', batch: 4, seq: 64 },
  small: { config: 'bench/distill/gemma2-small-config.json', batch: 1, seq: 128 },
};

async function main() {
  const which = process.argv[2] ?? 'small';
  const kind = (process.argv[3] ?? 'wasm') as BackendKind;
  const top = Number(process.argv[4] ?? 25);
  await initCpuBackend(kind);
  const c = CONFIGS[which];
  const config = JSON.parse(fs.readFileSync(path.join(ROOT, c.config), 'utf8'));
  const source = fs.readFileSync(path.join(ROOT, 'gemma2.model'), 'utf8');
  const g = compileModel(source, 'gemma2.model', { config, dims: { batch: c.batch, seq: c.seq } }).graph!;
  const step = trainingStep(g, {});
  const phase = (id: number) => (id < step.forwardEnd ? 'fwd' : id < step.backwardEnd ? 'bwd' : 'opt');

  let timing: Map<string, { ms: number; calls: number; phase: string }> | undefined;
  for (const def of allOps()) {
    const cpu = def.cpu;
    if (!cpu) continue;
    (def as { cpu: typeof cpu }).cpu = (ctx, ins, node: Node) => {
      const t0 = performance.now();
      const out = cpu(ctx, ins, node);
      // wasm and cpu kernels run synchronously; dataSync would only add a copy
      const ms = performance.now() - t0;
      if (timing) {
        const attrs = Object.entries(node.attrs).filter(([k]) => k !== 'value' && k !== 'name').map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(' ');
        const key = `${phase(node.id)} ${node.op}(${ins.map((t) => `[${t.shape.join(',')}]`).join(', ')}) ${attrs}`;
        const e = timing.get(key) ?? { ms: 0, calls: 0, phase: phase(node.id) };
        e.ms += ms;
        e.calls++;
        timing.set(key, e);
      }
      return out;
    };
  }

  const params = initParams(g, 1, 0.02);
  const V = config.vocab_size;
  const ids = Int32Array.from({ length: c.batch * c.seq }, (_, i) => (i * 7919) % V);
  const feeds: Record<string, tf.Tensor> = {
    input_ids: tf.tensor(ids, [c.batch, c.seq], 'int32'),
    labels: tf.tensor(shiftLabels(ids, c.batch, c.seq), [c.batch, c.seq], 'int32'),
    step: tf.scalar(1),
    lr: tf.scalar(1e-3),
  };
  const st = zeroState(params);
  for (const [k, t] of st.m) feeds[`adam.m.${k}`] = t;
  for (const [k, t] of st.v) feeds[`adam.v.${k}`] = t;
  const run = () => {
    const t0 = performance.now();
    const r = execute(step.graph, feeds, params);
    for (const t of Object.values(r.outputs)) t.dispose();
    return performance.now() - t0;
  };
  run(); // warm-up
  timing = new Map();
  const total = run();
  const byPhase: Record<string, number> = {};
  for (const e of timing.values()) byPhase[e.phase] = (byPhase[e.phase] ?? 0) + e.ms;
  console.log(`${which} B ${c.batch} x T ${c.seq}, ${kind}: step ${total.toFixed(0)} ms; ${Object.entries(byPhase).map(([k, v]) => `${k} ${v.toFixed(0)} ms`).join(', ')}`);
  const byOp = new Map<string, number>();
  for (const [k, e] of timing) {
    const op = k.split('(')[0];
    byOp.set(op, (byOp.get(op) ?? 0) + e.ms);
  }
  console.log('by phase and op: ' + [...byOp].sort((a, b) => b[1] - a[1]).slice(0, 16).map(([k, v]) => `${k} ${v.toFixed(0)}`).join(', '));
  for (const [k, e] of [...timing].sort((a, b) => b[1].ms - a[1].ms).slice(0, top)) console.log(`${e.ms.toFixed(1).padStart(9)} ms ${String(e.calls).padStart(4)}×  ${k}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
