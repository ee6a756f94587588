/**
 * How long the front end (compileModel) and the default pass pipeline (resolvePipeline({}) + runPipeline, with
 * verification) take on Gemma 2 27B, and how much they allocate. Run 1 is cold; the rest are warm (median and
 * min). The `_cpu` figures are this process's CPU time in each stage (user + system, GC threads included), which
 * is steadier than wall time on a machine shared with other jobs. With `alloc`, the warm runs are repeated under
 * the sampling heap profiler and the MB each stage allocates per run is printed (objects already collected by
 * minor and major GCs included: the allocation volume, not the live heap).
 *   (from the repo root) npx esbuild --bundle --platform=node bench/frontend-passes-speed.ts --outfile=/tmp/fp-speed.js && node /tmp/fp-speed.js [runs] [alloc] */
import * as fs from 'fs';
import * as path from 'path';
import { Session } from 'inspector';
import '../src/ir';
import { compileModel } from '../grammar';
import { resolvePipeline, runPipeline } from '../src/passes';
import { Graph } from '../src/ir';

const src = fs.readFileSync(path.join(process.cwd(), 'gemma2.model'), 'utf8');
const runs = Number(process.argv[2] ?? 9);
const passes = resolvePipeline({});
const dims = { batch: 768, seq: 8192 };

const frontEnd = (): Graph => compileModel(src, 'gemma2.model', { variant: '27b', dims }).graph!;
const pipeline = (g: Graph): Graph => runPipeline(g, passes).graph;

/** CPU ms from `c0` to `c1` (default: now). */
function cpuMs(c0: NodeJS.CpuUsage, c1 = process.cpuUsage()): number {
  return (c1.user - c0.user + c1.system - c0.system) / 1000;
}

function timings(): void {
  const rows: { front_end: number; passes: number; front_end_cpu: number; passes_cpu: number }[] = [];
  let nodes = 0;
  for (let i = 0; i < runs; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const g0 = frontEnd();
    const t1 = performance.now();
    const c1 = process.cpuUsage();
    const g = pipeline(g0);
    const t2 = performance.now();
    rows.push({ front_end: t1 - t0, passes: t2 - t1, front_end_cpu: cpuMs(c0, c1), passes_cpu: cpuMs(c1) });
    nodes = g.nodes.length;
  }
  const warm = rows.slice(1);
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const stat = (f: (r: (typeof rows)[number]) => number) => ({ cold: Math.round(f(rows[0])), median: Math.round(med(warm.map(f))), min: Math.round(Math.min(...warm.map(f))) });
  console.log(
    JSON.stringify({
      front_end_ms: stat((r) => r.front_end),
      passes_ms: stat((r) => r.passes),
      front_end_cpu_ms: stat((r) => r.front_end_cpu),
      passes_cpu_ms: stat((r) => r.passes_cpu),
      nodes,
    }),
  );
}

/** MB allocated per warm run by each stage, from the sampling heap profiler (self sizes of every sample). */
function allocation(): void {
  const s = new Session();
  s.connect();
  const post = (method: string, params?: object) => new Promise<unknown>((resolve, reject) => s.post(method, params, (e, r) => (e ? reject(e) : resolve(r))));
  type Sample = { selfSize: number; children: Sample[] };
  const sum = (n: Sample): number => n.selfSize + n.children.reduce((a, c) => a + sum(c), 0);
  const measure = async (f: () => void): Promise<number> => {
    await post('HeapProfiler.enable');
    await post('HeapProfiler.startSampling', { samplingInterval: 32768, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
    f();
    const { profile } = (await post('HeapProfiler.stopSampling')) as { profile: { head: Sample } };
    return sum(profile.head) / 2 ** 20;
  };
  (async () => {
    let g0 = frontEnd();
    pipeline(g0); // warm
    const k = Math.max(1, runs - 1);
    const fe = await measure(() => {
      for (let i = 0; i < k; i++) g0 = frontEnd();
    });
    const ps = await measure(() => {
      for (let i = 0; i < k; i++) pipeline(g0);
    });
    console.log(JSON.stringify({ alloc_mb_per_run: { front_end: Math.round(fe / k), passes: Math.round(ps / k) } }));
    s.disconnect();
  })();
}

if (process.argv[3] === 'alloc') allocation();
else timings();
