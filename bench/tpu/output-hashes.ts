/**
 * SHA-256 of everything the 27B TPU compile emits (the IR after the passes, the program graph — the training step in
 * train mode —, the four programs of the training step and of the forward, and
 * the plan as cost.json would hold it), to check that a speed change leaves the output byte-identical:
 *   npx esbuild --bundle --platform=node bench/tpu/output-hashes.ts --outfile=/tmp/tpu-hash.js && node /tmp/tpu-hash.js
 * Run before and after; the printed lines must be equal.
 */
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import '../../src/ir';
import { compileModel } from '../../grammar';
import { resolvePipeline, runPipeline } from '../../src/passes';
import { compileTpu, getChip, makeMesh, parseStrategy, parseTopology } from '../../src/backends/tpu';

const src = fs.readFileSync(path.join(process.cwd(), 'gemma2.model'), 'utf8');
const dims = { batch: 768, seq: 8192 };
const mesh = makeMesh(parseTopology(getChip('v5p'), '8x24x32'), 'data=768,model=8');
const strategy = parseStrategy('fsdp+tp', mesh);
const h = (s: string) => createHash('sha256').update(s).digest('hex').slice(0, 16);
for (const mode of ['train', 'forward'] as const) {
  const g = runPipeline(compileModel(src, 'gemma2.model', { variant: '27b', dims }).graph!, resolvePipeline({})).graph;
  const c = compileTpu(g, mesh, strategy, { chip: 'v5p', topology: '8x24x32', mesh: 'data=768,model=8', mode, remat: 'layer-inputs' }, dims, { emit: true, floatDtype: 'bf16' });
  const p = c.programs!;
  console.log(mode, 'graph after passes', g.nodes.length, h(JSON.stringify(g)));
  console.log(mode, 'program graph', c.program.nodes.length, h(JSON.stringify(c.program)));
  for (const k of ['wholeMlir', 'wholeHlo', 'partitionedMlir', 'partitionedHlo'] as const) console.log(mode, k, p[k].length, h(p[k]));
  console.log(mode, 'plan', h(JSON.stringify(c.plan)));
}
