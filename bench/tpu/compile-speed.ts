/**
 * How long the TPU backend takes for Gemma 2 27B on the 6144-chip v5p mesh (data=768, model=8), in process:
 * the cost plan of a training step and the emission of the four programs.
*   (from the repo root) npx esbuild --bundle --platform=node bench/tpu/compile-speed.ts --outfile=/tmp/tpu-speed.js && node /tmp/tpu-speed.js
 */
import * as fs from 'fs';
import * as path from 'path';
import '../../src/ir';
import { compileModel } from '../../grammar';
import { emitPrograms, evaluatePlan, getChip, makeMesh, parseStrategy, parseTopology } from '../../src/backends/tpu';

const root = process.cwd();
const src = fs.readFileSync(path.join(root, 'gemma2.model'), 'utf8');
const dims = { batch: 768, seq: 8192 };
let t = performance.now();
const g = compileModel(src, 'gemma2.model', { variant: '27b', dims }).graph!;
const frontMs = performance.now() - t;
const mesh = makeMesh(parseTopology(getChip('v5p'), '8x24x32'), 'data=768,model=8');
const strategy = parseStrategy('fsdp+tp', mesh);
const runs: Record<string, number[]> = { plan_train: [], emit_programs: [] };
let sizes: Record<string, number> = {};
for (let i = 0; i < 3; i++) {
  t = performance.now();
  evaluatePlan(g, { chip: 'v5p', topology: '8x24x32', mesh: 'data=768,model=8', mode: 'train' }, dims);
  runs.plan_train.push(performance.now() - t);
  t = performance.now();
  const p = emitPrograms(g, mesh, strategy.policy, { floatDtype: 'bf16' });
  runs.emit_programs.push(performance.now() - t);
  sizes = { wholeMlir: p.wholeMlir.length, wholeHlo: p.wholeHlo.length, partitionedMlir: p.partitionedMlir.length, partitionedHlo: p.partitionedHlo.length };
}
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(JSON.stringify({ nodes: g.nodes.length, front_end_ms: Math.round(frontMs), plan_train_ms: Math.round(med(runs.plan_train)), emit_programs_ms: Math.round(med(runs.emit_programs)), chars: sizes }));
