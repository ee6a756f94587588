/**
 * What each pass of the default pipeline changes on Gemma 2 27B: node count, materialised bytes (every
 * non-source node's output, one kernel per node), bytes accessed and FLOPs (XLA HloCostAnalysis conventions,
 * src/ir/cost.ts) at batch 1 and seq 4096 / 8192, and the time of each pass.
 *
 *   npm run build && node dist/bench/passes.js [--variant 27b] [--repeat 5]
 */
import * as fs from 'fs';
import * as path from 'path';
import { compileModel } from '../grammar';
import { Graph, nodeCost, concreteShape, bytesOf, getOp, nodeMap } from '../src/ir';
import { BUILTIN_PASSES, runPipeline } from '../src/passes';

const arg = (k: string, d: string) => {
  const i = process.argv.indexOf(k);
  return i > 0 ? process.argv[i + 1] : d;
};
const variant = arg('--variant', '27b');
const repeat = Number(arg('--repeat', '5'));
const file = path.join(__dirname, '../../gemma2.model');

function measure(g: Graph, seq: number) {
  const env = { batch: 1, seq };
  const m = nodeMap(g);
  let flops = 0;
  let trans = 0;
  let accessed = 0;
  let materialised = 0;
  let matmulFlops = 0;
  let largest = 0;
  for (const n of g.nodes) {
    const def = getOp(n.op);
    const out = { dtype: n.type.dtype, shape: concreteShape(n.type.shape, env) };
    const ins = n.inputs.map((i) => ({ dtype: m.get(i)!.type.dtype, shape: concreteShape(m.get(i)!.type.shape, env) }));
    const c = nodeCost(n, ins, out);
    flops += c.flops;
    trans += c.transcendentals;
    accessed += c.bytes;
    if (n.op === 'matmul') matmulFlops += c.flops;
    if (!def.source && n.op !== 'constant') {
      materialised += bytesOf(out);
      largest = Math.max(largest, bytesOf(out));
    }
  }
  return { flops, trans, accessed, materialised, largest, matmulFlops };
}

const src = fs.readFileSync(file, 'utf8');
const t0 = performance.now();
const r = compileModel(src, file, { variant });
const frontMs = performance.now() - t0;
if (!r.graph) throw new Error(JSON.stringify(r.diagnostics.slice(0, 3)));
const stages: { name: string; g: Graph }[] = [{ name: '(front end)', g: r.graph }];
const res = runPipeline(r.graph, BUILTIN_PASSES, { after: (p, g) => stages.push({ name: p.name, g }) });
// timings: best of `repeat` full pipeline runs in this process, plus the first (cold) one
const times: number[][] = [res.stats.map((s) => s.ms)];
const vtimes: number[][] = [res.stats.map((s) => s.verify_ms)];
for (let k = 1; k < repeat; k++) {
  const x = runPipeline(r.graph, BUILTIN_PASSES);
  times.push(x.stats.map((s) => s.ms));
  vtimes.push(x.stats.map((s) => s.verify_ms));
}
const G = (x: number) => (x / 1e9).toFixed(1);
const T = (x: number) => (x / 1e12).toFixed(2);
console.log(`gemma2 ${variant}: front end ${frontMs.toFixed(0)} ms; ${repeat} pipeline runs`);
console.log('| after | nodes | T=4096 materialised GB | largest tensor MB | bytes accessed GB | FLOPs (T) | matmul FLOPs (T) | T=8192 materialised GB | bytes accessed GB | FLOPs (T) |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
for (const s of stages) {
  const a = measure(s.g, 4096);
  const b = measure(s.g, 8192);
  console.log(`| ${s.name} | ${s.g.nodes.length} | ${G(a.materialised)} | ${(a.largest / 1e6).toFixed(0)} | ${G(a.accessed)} | ${T(a.flops)} | ${T(a.matmulFlops)} | ${G(b.materialised)} | ${G(b.accessed)} | ${T(b.flops)} |`);
}
console.log('\n| pass | first run ms | best ms | verify ms (first / best) |');
console.log('| --- | ---: | ---: | ---: |');
res.stats.forEach((s, i) => {
  const best = Math.min(...times.map((t) => t[i]));
  const vb = Math.min(...vtimes.map((t) => t[i]));
  console.log(`| ${s.name} | ${s.ms.toFixed(1)} | ${best.toFixed(1)} | ${s.verify_ms.toFixed(1)} / ${vb.toFixed(1)} |`);
});
const sum = (a: number[]) => a.reduce((x, y) => x + y, 0);
console.log(`| total | ${sum(times[0]).toFixed(1)} | ${Math.min(...times.map(sum)).toFixed(1)} | ${sum(vtimes[0]).toFixed(1)} / ${Math.min(...vtimes.map(sum)).toFixed(1)} |`);
