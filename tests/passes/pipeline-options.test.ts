/** `ctx.log` output, what `--passes` runs when plugins are loaded, and the 27B node counts docs/passes.md quotes. */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { lapidary, expectCleanFailure, ROOT } from '../cli/helpers';
import { definePass, resolvePipeline, runPipeline, DEFAULT_PIPELINE } from '../../src/passes';
import { GraphBuilder } from '../../src/ir';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lapidary-pipeline-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const PLUGIN = path.join(tmp, 'p.mjs');
fs.writeFileSync(
  PLUGIN,
  `export default (api) => [
  api.definePass({ name: 'gelu-expand', description: 'logs two lines', run: (g, ctx) => { ctx.log('first line'); ctx.log('nodes ' + g.nodes.length); return g; } }),
  api.definePass({ name: 'mul-one', description: 'does nothing', run: (g) => g }),
];
`,
);
const names = (stdout: string) => JSON.parse(stdout).passes.map((p: { name: string }) => p.name);

test('ctx.log lines are shown: under the pass in the table, as a per-pass log in --json and in the --trace file', () => {
  let r = lapidary(['compile', 'gemma2.model', '--variant', '2b', '--plugin', 'examples/passes/exact-gelu.ts']);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  expect(r.stdout).toMatch(/\nexact-gelu +1931 → 1931 +26\n +↳ max \|gelu_tanh − gelu\| = 4\.73e-4\n/);
  const trace = path.join(tmp, 'trace.json');
  r = lapidary(['compile', 'gemma2.model', '--plugin', PLUGIN, '--passes', 'cse,gelu-expand', '--json', '--trace', trace]);
  expect(r.stderr).toBe('');
  const j = JSON.parse(r.stdout);
  expect(j.passes.map((p: { name: string; log: string[] }) => [p.name, p.log])).toEqual([['cse', []], ['gelu-expand', ['first line', `nodes ${j.nodes}`]]]);
  const t = JSON.parse(fs.readFileSync(trace, 'utf8'));
  expect(t.passes[1].log).toEqual(['first line', `nodes ${j.nodes}`]);
});

test('--passes runs exactly the named passes in the named order, plugin passes only if named', () => {
  let r = lapidary(['compile', 'gemma2.model', '--plugin', PLUGIN, '--passes', 'cse', '--json']);
  expect(r.stderr).toBe('');
  expect(names(r.stdout)).toEqual(['cse']);
  r = lapidary(['compile', 'gemma2.model', '--plugin', PLUGIN, '--passes', 'mul-one,cse,gelu-expand', '--json']);
  expect(names(r.stdout)).toEqual(['mul-one', 'cse', 'gelu-expand']);
  r = lapidary(['compile', 'gemma2.model', '--plugin', PLUGIN, '--passes', 'mul-one,cse,gelu-expand', '--no-pass', 'cse', '--json']);
  expect(names(r.stdout)).toEqual(['mul-one', 'gelu-expand']);
  // without --passes: the default pipeline, then the plugin passes (at the end or after --pass-after)
  r = lapidary(['compile', 'gemma2.model', '--plugin', PLUGIN, '--json']);
  expect(names(r.stdout)).toEqual([...DEFAULT_PIPELINE, 'gelu-expand', 'mul-one']);
  r = lapidary(['compile', 'gemma2.model', '--plugin', PLUGIN, '--pass-after', 'gqa', '--json']);
  expect(names(r.stdout)).toEqual(['constant-folding', 'softcap-folding', 'attention-fusion', 'sliding-window', 'gqa', 'gelu-expand', 'mul-one', 'reshape-simplify', 'cse', 'dce']);
  // --pass-after has nothing to place when --passes is the whole pipeline
  r = lapidary(['compile', 'gemma2.model', '--plugin', PLUGIN, '--passes', 'cse', '--pass-after', 'cse']);
  expectCleanFailure(r);
  expect(r.stderr).toMatch(/--pass-after 'cse' places plugin passes in the default pipeline; with --passes, name the plugin passes/);
  r = lapidary(['compile', 'gemma2.model', '--plugin', PLUGIN, '--passes', 'cse,gelu-expnd']);
  expectCleanFailure(r);
  expect(r.stderr).toMatch(/--passes: unknown pass 'gelu-expnd' \(did you mean 'gelu-expand'\?\)/);
});

test('the library: resolvePipeline with a list ignores unnamed plugins; runPipeline keeps each pass log', () => {
  const a = definePass({ name: 'a', description: 'a', run: (g, ctx) => (ctx.log('from a'), g) });
  const b = definePass({ name: 'b', description: 'b', run: (g) => g });
  expect(resolvePipeline({ passes: ['dce', 'a'], plugins: [a, b] }).map((p) => p.name)).toEqual(['dce', 'a']);
  expect(resolvePipeline({ plugins: [a, b] }).map((p) => p.name)).toEqual([...DEFAULT_PIPELINE, 'a', 'b']);
  const gb = new GraphBuilder('g');
  const x = gb.input('x', { dtype: 'f32', shape: [3] });
  const g = gb.build({ outputs: [{ name: 'y', node: gb.op('tanh', [x]) }] });
  const r = runPipeline(g, [a, b]);
  expect(r.stats.map((s) => s.log)).toEqual([['from a'], []]);
  expect(r.log).toEqual(['a: from a']);
});

test("docs/passes.md's Gemma 2 27B node counts are the ones compile reports", () => {
  const r = lapidary(['compile', 'gemma2.model', '--variant', '27b', '--json']);
  expect(r.code).toBe(0);
  const measured = JSON.parse(r.stdout).passes.map((p: { name: string; nodes_after: number }) => [p.name, p.nodes_after]);
  const doc = fs.readFileSync(path.join(ROOT, 'docs/passes.md'), 'utf8');
  const table = doc.slice(doc.indexOf('## What each pass changes on Gemma 2 27B'));
  const documented = [...table.matchAll(/^\| ([a-z-]+) \| (\d+) \|/gm)].map((m) => [m[1], Number(m[2])]);
  expect(documented).toEqual(measured);
});
