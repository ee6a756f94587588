/**
 * How long the front end takes to build (elaborate) and verify the IR of each Gemma 2 variant, in process.
 *   npm run build && node dist/bench/ir-build.js [repeats]
 * Prints one JSON line per variant: node count, first (cold) build, and the median of the warm builds.
 */
import * as fs from 'fs';
import * as path from 'path';
import { compileModel } from '../grammar';
import { verify } from '../src/ir';

const ROOT = path.resolve(__dirname, '..', fs.existsSync(path.resolve(__dirname, '../package.json')) ? '' : '..');
const repeats = Number(process.argv[2] ?? 15);
const source = fs.readFileSync(path.join(ROOT, 'gemma2.model'), 'utf8');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

for (const variant of ['2b', '9b', '27b']) {
  const build: number[] = [];
  const check: number[] = [];
  let nodes = 0;
  for (let i = 0; i <= repeats; i++) {
    const t0 = performance.now();
    const r = compileModel(source, 'gemma2.model', { variant });
    const t1 = performance.now();
    if (!r.graph) throw new Error(`gemma2 ${variant} did not build`);
    verify(r.graph);
    const t2 = performance.now();
    nodes = r.graph.nodes.length;
    build.push(t1 - t0);
    check.push(t2 - t1);
  }
  const [coldBuild, coldVerify] = [build.shift()!, check.shift()!];
  console.log(JSON.stringify({
    variant, nodes,
    cold_build_ms: +coldBuild.toFixed(1), cold_verify_ms: +coldVerify.toFixed(1),
    build_ms_median: +median(build).toFixed(1), verify_ms_median: +median(check).toFixed(1),
  }));
}
