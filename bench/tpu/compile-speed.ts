/**
 * How long the whole TPU compile of Gemma 2 27B takes for the 6144-chip v5p mesh (data=768, model=8, fsdp+tp,
 * batch 768 × 8192), in process: front end, the default pass pipeline (as `lapidary compile` runs it), the
 * training step (src/train), one partitioning pass feeding the cost recorder and the layer-function outliner (which
 * then prints both per-device programs), the plan, and the two whole (annotated) programs. Run 1 is cold (JIT not warm); the median of the rest is warm, and
 * `warm_min_ms` the fastest warm run (least disturbed by other jobs on a shared machine); `cpu` is process CPU time.
 *   (from the repo root) npx esbuild --bundle --platform=node bench/tpu/compile-speed.ts --outfile=/tmp/tpu-speed.js && node /tmp/tpu-speed.js [runs] [forward|train] [plan]
 * With `plan`, no program text is printed: the partitioned program and its cost only (what `lapidary cost` does).
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import '../../src/ir';
import { compileModel } from '../../grammar';
import { resolvePipeline, runPipeline } from '../../src/passes';
import { compileTpu, getChip, makeMesh, parseStrategy, parseTopology } from '../../src/backends/tpu';

const root = process.cwd();
const src = fs.readFileSync(path.join(root, 'gemma2.model'), 'utf8');
const runs = Number(process.argv[2] ?? 5);
const mode = (process.argv[3] ?? 'train') as 'train' | 'forward';
const emit = process.argv[4] !== 'plan';
const dims = { batch: 768, seq: 8192 };
const mesh = makeMesh(parseTopology(getChip('v5p'), '8x24x32'), 'data=768,model=8');
const strategy = parseStrategy('fsdp+tp', mesh);
const passes = resolvePipeline({});
const rows: Record<string, number>[] = [];
let info: Record<string, unknown> = {};
for (let i = 0; i < runs; i++) {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const g0 = compileModel(src, 'gemma2.model', { variant: '27b', dims }).graph!;
  const t1 = performance.now();
  const g = runPipeline(g0, passes).graph;
  const t2 = performance.now();
  const c = compileTpu(g, mesh, strategy, { chip: 'v5p', topology: '8x24x32', mesh: 'data=768,model=8', mode, remat: 'layer-inputs' }, dims, { emit, floatDtype: 'bf16' });
  const t3 = performance.now();
  rows.push({
    front_end: t1 - t0,
    passes: t2 - t1,
    training_step: c.ms.training_step,
    partition_cost_and_per_device_programs: c.ms.partition_and_cost,
    whole_programs: c.ms.whole_programs,
    total: t3 - t0,
    // CPU time of this process (user + system, all threads: includes concurrent GC) — steadier than wall time
    // on a machine shared with other jobs.
    cpu: (() => {
      const c = process.cpuUsage(c0);
      return (c.user + c.system) / 1000;
    })(),
  });
  const p = c.programs;
  info = {
    emit,
    nodes: { forward: g.nodes.length, program: c.program.nodes.length },
    ...(p ? { chars: { wholeMlir: p.wholeMlir.length, wholeHlo: p.wholeHlo.length, partitionedMlir: p.partitionedMlir.length, partitionedHlo: p.partitionedHlo.length } } : {}),
    step_time_s: c.plan.step_time_s,
    mfu: c.plan.mfu,
  };
}
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const r = (x: number) => Math.round(x);
const keys = Object.keys(rows[0]);
console.log(
  JSON.stringify({
    mode,
    load_average: os.loadavg().map((x) => Math.round(x * 10) / 10),
    cold_ms: Object.fromEntries(keys.map((k) => [k, r(rows[0][k])])),
    warm_median_ms: rows.length > 1 ? Object.fromEntries(keys.map((k) => [k, r(med(rows.slice(1).map((x) => x[k])))])) : undefined,
    warm_min_ms: rows.length > 1 ? Object.fromEntries(keys.map((k) => [k, r(Math.min(...rows.slice(1).map((x) => x[k])))])) : undefined,
    ...info,
  }),
);
