/** `lapidary compile` as a user runs it (the built CLI): the 27B pipeline, plugins from outside the repo, errors. */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as crypto from 'crypto';
import { lapidary, expectCleanFailure, ROOT } from '../cli/helpers';
import { fromJSON } from '../../src/ir';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lapidary-passes-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const sha = (f: string) => crypto.createHash('sha256').update(fs.readFileSync(f)).digest('hex');

test('gemma2 27b: 46 fused attentions (23 windowed), no t×t tensor, no K/V repeat, no tanh soft-cap', () => {
  const out = path.join(tmp, '27b.json');
  const r = lapidary(['compile', 'gemma2.model', '--variant', '27b', '--json', '-o', out]);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  const j = JSON.parse(r.stdout);
  expect(j.passes.map((p: { name: string }) => p.name)).toEqual(['constant-folding', 'softcap-folding', 'attention-fusion', 'sliding-window', 'gqa', 'reshape-simplify', 'cse', 'dce']);
  for (const p of j.passes) expect(Object.keys(p)).toEqual(expect.arrayContaining(['name', 'ms', 'nodes_before', 'nodes_after', 'changed']));
  expect(j.ops.fused_attention).toBe(46);
  for (const op of ['tanh', 'select', 'softmax', 'broadcast', 'compare']) expect(j.ops[op]).toBeUndefined();
  const g = fromJSON(JSON.parse(fs.readFileSync(out, 'utf8')));
  const fa = g.nodes.filter((n) => n.op === 'fused_attention');
  expect(fa.filter((n) => n.attrs.window === 4096).length).toBe(23);
  expect(fa.filter((n) => n.attrs.window === 0).length).toBe(23);
  expect(fa.every((n) => n.attrs.groups === 2 && n.attrs.softcap === 50 && n.attrs.causal === true && n.inputs.length === 3)).toBe(true);
  expect(g.nodes.filter((n) => n.type.shape.filter((d) => d === 'seq').length >= 2)).toEqual([]);
});

test('plugins from outside the repository (.mjs and .ts), placed with --pass-after; the files stay untouched', () => {
  const mjs = path.join(tmp, 'fuse-rmsnorm.mjs');
  const ts = path.join(tmp, 'exact-gelu.ts');
  fs.copyFileSync(path.join(ROOT, 'examples/passes/fuse-rmsnorm.mjs'), mjs);
  fs.copyFileSync(path.join(ROOT, 'examples/passes/exact-gelu.ts'), ts);
  const before = [sha(mjs), sha(ts)];
  const r = lapidary(['compile', path.join(ROOT, 'gemma2.model'), '--variant', '2b', '--plugin', mjs, '--plugin', ts, '--pass-after', 'constant-folding', '--json'], { cwd: tmp });
  expect(r.stderr).toBe('');
  const j = JSON.parse(r.stdout);
  expect(j.passes.map((p: { name: string }) => p.name).slice(0, 3)).toEqual(['constant-folding', 'fuse-rmsnorm', 'exact-gelu']);
  expect(j.ops.rmsnorm).toBe(4 * 26 + 1);
  expect(j.ops.gelu_erf).toBe(26);
  expect(j.ops.fused_attention).toBe(26);
  expect([sha(mjs), sha(ts)]).toEqual(before);
});

test('a plugin that throws, or breaks the IR, is reported by pass name without a stack trace', () => {
  const throws = path.join(tmp, 'throws.mjs');
  fs.writeFileSync(throws, "export default (api) => api.definePass({ name: 'explode', description: 'x', run() { throw new Error('kaboom'); } });\n");
  let r = lapidary(['compile', 'gemma2.model', '--plugin', throws]);
  expectCleanFailure(r);
  expect(r.stderr).toMatch(/pass 'explode' \(from .*throws\.mjs\) failed at .*throws\.mjs:1:\d+: kaboom/);
  const breaks = path.join(tmp, 'breaks.mjs');
  fs.writeFileSync(breaks, "export default (api) => api.definePass({ name: 'drop-first', description: 'x', run: (g) => ({ ...g, nodes: g.nodes.slice(1) }) });\n");
  r = lapidary(['compile', 'gemma2.model', '--plugin', breaks]);
  expectCleanFailure(r);
  expect(r.stderr).toMatch(/pass 'drop-first' .* broke the IR: IR verification failed: %\d+: uses %0/);
  const syntax = path.join(tmp, 'syntax.ts');
  fs.writeFileSync(syntax, 'export default (api) => {\n  return api.definePass({ name: "x" \n');
  r = lapidary(['compile', 'gemma2.model', '--plugin', syntax]);
  expectCleanFailure(r);
  expect(r.stderr).toMatch(/syntax\.ts:3:\d+: error:/);
  r = lapidary(['compile', 'gemma2.model', '--plugin', path.join(tmp, 'missing.mjs')]);
  expectCleanFailure(r);
  expect(r.stderr).toMatch(/missing\.mjs': no such file/);
});

test('bad pipeline options are clean errors; --print-after and --dump-dir show the IR', () => {
  let r = lapidary(['compile', 'gemma2.model', '--passes', 'softcap-folding,atention-fusion']);
  expectCleanFailure(r);
  expect(r.stderr).toMatch(/unknown pass 'atention-fusion' \(did you mean 'attention-fusion'\?\)/);
  r = lapidary(['compile', 'gemma2.model', '--no-pass', 'cse', '--no-pass', 'nope']);
  expectCleanFailure(r);
  const dump = path.join(tmp, 'dump');
  r = lapidary(['compile', 'gemma2.model', '--passes', 'softcap-folding,attention-fusion', '--print-after', 'attention-fusion', '--dump-dir', dump, '--timings']);
  expect(r.code).toBe(0);
  expect(r.stderr).toMatch(/IR after attention-fusion/);
  expect(r.stderr).toMatch(/fused_attention\(/);
  expect(r.stdout).toMatch(/attention-fusion .*→/);
  expect(fs.readdirSync(dump).sort()).toEqual(['00-input.ir.txt', '01-softcap-folding.ir.txt', '02-attention-fusion.ir.txt', 'trace.json']);
  const trace = JSON.parse(fs.readFileSync(path.join(dump, 'trace.json'), 'utf8'));
  expect(trace[0]).toEqual({ pass: 'softcap-folding', rule: expect.any(String), replaced: expect.any(Array), created: expect.any(Array), scope: expect.any(String) });
  // Two outputs in one file: refused before anything is written (the trace would have been lost).
  const same = path.join(tmp, 'same.json');
  r = lapidary(['compile', 'gemma2.model', '-o', same, '--trace', same]);
  expectCleanFailure(r);
  expect(r.stderr).toMatch(/--output and --trace name the same file/);
  expect(fs.existsSync(same)).toBe(false);
  const dump2 = path.join(tmp, 'dump2');
  r = lapidary(['compile', 'gemma2.model', '--dump-dir', dump2, '--trace', path.join(dump2, 'trace.json')]);
  expectCleanFailure(r);
  expect(r.stderr).toMatch(/is the trace\.json that --dump-dir writes/);
  expect(fs.existsSync(dump2)).toBe(false);
});

test('another model file (Llama 2, no soft-cap, no window, no GQA at 7b) fuses every attention as global', () => {
  const r = lapidary(['compile', 'examples/llama2.model', '--variant', '7b', '--json']);
  expect(r.code).toBe(0);
  const j = JSON.parse(r.stdout);
  expect(j.ops.fused_attention).toBe(32);
  expect(j.ops.softmax).toBeUndefined();
});
