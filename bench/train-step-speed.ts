/**
 * How long building the training step of Gemma 2 27B takes (src/train: loss, autodiff, AdamW, pruning), the stage
 * `compileTpu` runs for `--mode train`. The model is compiled and the default passes run once; then the step is
 * built `runs` times with the TPU backend's settings (remat `layer-inputs`). Run 1 is cold (JIT not warm); prints
 * the warm median and minimum wall time, the median CPU time (steadier on a shared machine) and the node count.
 *   (from the repo root) npx esbuild --bundle --platform=node bench/train-step-speed.ts --outfile=/tmp/train-step-speed.js && node /tmp/train-step-speed.js [runs]
 */
import * as fs from 'fs';
import * as path from 'path';
import '../src/ir';
import { compileModel } from '../grammar';
import { resolvePipeline, runPipeline } from '../src/passes';
import { trainingStep } from '../src/train/step';

const src = fs.readFileSync(path.join(process.cwd(), 'gemma2.model'), 'utf8');
const runs = Number(process.argv[2] ?? 15);
const g0 = compileModel(src, 'gemma2.model', { variant: '27b', dims: { batch: 768, seq: 8192 } }).graph!;
const forward = runPipeline(g0, resolvePipeline({})).graph;

const wall: number[] = [];
const cpu: number[] = [];
let nodes = 0;
for (let i = 0; i < runs; i++) {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  nodes = trainingStep(forward, { remat: 'layer-inputs' }).graph.nodes.length;
  wall.push(performance.now() - t0);
  const c = process.cpuUsage(c0);
  cpu.push((c.user + c.system) / 1000);
}
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const r = (x: number) => Math.round(x * 10) / 10;
const warm = (xs: number[]) => (xs.length > 1 ? xs.slice(1) : xs);
console.log(JSON.stringify({ nodes, cold_ms: r(wall[0]), warm_median_ms: r(med(warm(wall))), warm_min_ms: r(Math.min(...warm(wall))), warm_cpu_median_ms: r(med(warm(cpu))) }));
