/** Regressions found by using the CLI as a new user would: output paths, pipes, option spellings, plugin mistakes. */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { lapidary, expectCleanFailure, BIN, ROOT } from './helpers';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lapidary-qa-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

// A small model of its own (not in the repository), so every run is quick.
const MODEL = path.join(tmp, 'tiny.model');
fs.writeFileSync(
  MODEL,
  `model tiny
hparams { vocab = 16; d = 8; heads = 2; layers = 2 }
dim batch, seq
block layer(x) {
  h = attn: attention(rmsnorm_plain(x, 1e-5), arange(dim(x, 1)), heads = heads, kv_heads = 1, head_dim = 4, scale = 0.5)
  return x + h
}
forward(ids: i32[batch, seq]) {
  e = param embed.weight[vocab, d]
  x = gather(e, ids)
  for i in 0 .. layers { x = layers[i]: layer(x) }
  return logits = linear(x, e)
}
`,
);
const leftovers = (dir: string) => fs.readdirSync(dir).filter((f) => /\.tmp-\d+$/.test(f));

test('-o and --trace: a missing directory, a directory, or a link to an input are clean errors, and nothing is left behind', () => {
  let r = lapidary(['compile', MODEL, '-o', path.join(tmp, 'no/such/dir/out.json')]);
  expectCleanFailure(r);
  expect(r.stderr).toMatch(/--output '.*out\.json': the directory '.*dir' does not exist/);
  r = lapidary(['compile', MODEL, '-o', tmp]);
  expectCleanFailure(r);
  expect(r.stderr).toMatch(/--output '.*' is a directory; give a file name/);
  r = lapidary(['compile', MODEL, '--trace', tmp]);
  expectCleanFailure(r);
  expect(r.stderr).toMatch(/--trace '.*' is a directory/);
  const link = path.join(tmp, 'link.json');
  fs.symlinkSync(MODEL, link);
  const before = fs.readFileSync(MODEL, 'utf8');
  r = lapidary(['compile', MODEL, '-o', link]);
  expectCleanFailure(r);
  expect(r.stderr).toMatch(/is an input file; refusing to overwrite it/);
  expect(fs.readFileSync(MODEL, 'utf8')).toBe(before);
  expect(leftovers(tmp)).toEqual([]);
  expect(leftovers(path.dirname(tmp))).toEqual([]);
});

test('--dump-dir below a file, or where it cannot be created, is a clean error', () => {
  const file = path.join(tmp, 'afile');
  fs.writeFileSync(file, 'x');
  let r = lapidary(['compile', MODEL, '--dump-dir', path.join(file, 'sub')]);
  expectCleanFailure(r);
  expect(r.stderr).toMatch(/--dump-dir '.*sub': '.*afile' exists and is not a directory/);
  // fs.mkdirSync(..., { recursive: true }) never returns under /proc; ours reports it
  r = lapidary(['compile', MODEL, '--dump-dir', '/proc/lapidary-qa']);
  expectCleanFailure(r);
  expect(r.stderr).toMatch(/--dump-dir '\/proc\/lapidary-qa': cannot create/);
  // like -o and --trace, a missing parent directory is an error (it used to be created silently) …
  r = lapidary(['compile', MODEL, '--dump-dir', path.join(tmp, 'new/nested/dump'), '--passes', 'cse']);
  expectCleanFailure(r);
  expect(r.stderr).toBe(`lapidary: error: --dump-dir '${path.join(tmp, 'new/nested/dump')}': the directory '${path.join(tmp, 'new/nested')}' does not exist\n`);
  expect(fs.existsSync(path.join(tmp, 'new'))).toBe(false);
  r = lapidary(['compile', MODEL, '--dump-dir', '/nonexist-lapidary-qa/x']);
  expectCleanFailure(r);
  expect(r.stderr).toMatch(/--dump-dir '\/nonexist-lapidary-qa\/x': the directory '\/nonexist-lapidary-qa' does not exist/);
  expect(fs.existsSync('/nonexist-lapidary-qa')).toBe(false);
  // … while the dump folder itself is created when only it is missing
  fs.mkdirSync(path.join(tmp, 'new'));
  r = lapidary(['compile', MODEL, '--dump-dir', path.join(tmp, 'new/dump'), '--passes', 'cse']);
  expect(r.code).toBe(0);
  expect(fs.readdirSync(path.join(tmp, 'new/dump')).sort()).toEqual(['00-input.ir.txt', '01-cse.ir.txt', 'trace.json']);
});

test('compile without --target tpu refuses the TPU plan options instead of ignoring them; -o help says what it is per target', () => {
  let r = lapidary(['compile', MODEL, '--chip', 'v5e', '--chips', '4', '--mesh', 'data=4', '--mode', 'train']);
  expectCleanFailure(r);
  expect(r.stderr).toBe('lapidary: error: option --chip only applies to --target tpu\n');
  // the first one given is named, whatever the registration order
  r = lapidary(['compile', MODEL, '--target', 'cpu', '--mode', 'train', '--chip', 'v5e']);
  expect(r.stderr).toBe('lapidary: error: option --mode only applies to --target tpu\n');
  for (const args of [['--topology', '2x2'], ['--chips', '4'], ['--mesh', 'data=4'], ['--strategy', 'dp'], ['--remat', 'save-all'], ['--context', '8'], ['--tokens', '2e12'], ['--no-overlap'], ['--dtype', 'f32'], ['--precision', 'bf16'], ['--matmul-efficiency', '0.5']]) {
    r = lapidary(['compile', MODEL, ...args]);
    expectCleanFailure(r);
    expect(r.stderr).toBe(`lapidary: error: option ${args[0]} only applies to --target tpu\n`);
  }
  // the same options with --target tpu still work
  const out = path.join(tmp, 'tpu-out');
  r = lapidary(['compile', MODEL, '--target', 'tpu', '--chip', 'v5e', '--chips', '4', '--mesh', 'data=4', '--batch', '4', '--seq', '8', '-o', out]);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  expect(fs.readdirSync(out)).toContain('cost.json');
  const help = lapidary(['compile', '--help']).stdout.replace(/\s+/g, ' ');
  expect(help).not.toMatch(/-o, --output <file> +write the optimised graph as IR JSON/);
  expect(help).toMatch(/-o, --output <path> CPU pipeline \(default target\): the IR JSON file .* --target tpu: the output folder/);
});

test('--no-pass takes a comma-separated list like --passes; --pass-after without --plugin is an error', () => {
  let r = lapidary(['compile', MODEL, '--no-pass', 'cse,dce', '--no-pass', 'gqa', '--json']);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  const names = JSON.parse(r.stdout).passes.map((p: { name: string }) => p.name);
  expect(names).toEqual(['constant-folding', 'softcap-folding', 'attention-fusion', 'sliding-window', 'reshape-simplify']);
  r = lapidary(['compile', MODEL, '--pass-after', 'cse']);
  expectCleanFailure(r);
  expect(r.stderr).toMatch(/--pass-after 'cse' places the passes of --plugin files; no --plugin was given/);
});

test('plugin mistakes a first-time author makes get a message that says what to do', () => {
  const asyncPass = path.join(tmp, 'async.mjs');
  fs.writeFileSync(asyncPass, "export default (api) => api.definePass({ name: 'later', description: 'x', run: async (g) => g });\n");
  let r = lapidary(['compile', MODEL, '--plugin', asyncPass]);
  expectCleanFailure(r);
  expect(r.stderr).toMatch(/pass 'later' \(from .*async\.mjs\) returned a Promise: passes run synchronously/);
  const mutate = path.join(tmp, 'mutate.mjs');
  fs.writeFileSync(mutate, "export default (api) => api.definePass({ name: 'in-place', description: 'x', run: (g) => { g.nodes.pop(); return g; } });\n");
  r = lapidary(['compile', MODEL, '--plugin', mutate]);
  expectCleanFailure(r);
  expect(r.stderr).toMatch(/pass 'in-place' .* failed at .*mutate\.mjs:1:\d+: .*\(graphs are frozen: return a new graph/);
});

test('lapidary ir … | head: the reader closing the pipe ends the run quietly (no EPIPE stack trace)', () => {
  const r = spawnSync('bash', ['-c', `set -o pipefail; "${process.execPath}" "${BIN}" ir gemma2.model --variant 27b | head -n 1`], { cwd: ROOT, encoding: 'utf8' });
  expect(r.stdout).toMatch(/^graph gemma2/);
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
});

test('check without --variant checks every variant: a size that only breaks the 27b is an error of the file', () => {
  const bad = path.join(tmp, 'gemma2-bad27b.model');
  fs.writeFileSync(bad, fs.readFileSync(path.join(ROOT, 'gemma2.model'), 'utf8').replace('n_heads = 32; n_kv_heads = 16', 'n_heads = 33; n_kv_heads = 16'));
  let r = lapidary(['check', bad]);
  expectCleanFailure(r);
  expect(r.stderr).toMatch(/gemma2-bad27b\.model:\d+:\d+: error: broadcast: .*\(in prelude block 'repeat_kv'\) \(variant 27b\)\n/);
  expect(r.stderr).toMatch(/\n1 error\n$/);
  r = lapidary(['check', bad, '--variant', '9b']);
  expect(r.code).toBe(0);
  expect(r.stderr).toBe('');
});

test('stats counts layers from the repeated labels, whatever the layer-count hyperparameter is called', () => {
  // the tiny model above calls it `layers`, GPT-2 style files `n_layer`
  const r = lapidary(['stats', MODEL, '--json']);
  expect(r.stderr).toBe('');
  const j = JSON.parse(r.stdout);
  expect(j.layers).toBe(2);
  expect(lapidary(['stats', MODEL]).stdout).toMatch(/\nlayers +2\n/);
});

test('an ES-module plugin can find files next to itself through import.meta.url', () => {
  const dir = path.join(tmp, 'plugin-with-data');
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'names.json'), JSON.stringify({ name: 'from-json' }));
  fs.writeFileSync(
    path.join(dir, 'p.mjs'),
    `import { definePass } from 'lapidary';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
const { name } = JSON.parse(readFileSync(new URL('./names.json', import.meta.url), 'utf8'));
export default definePass({ name, description: fileURLToPath(import.meta.url) + ' ' + import.meta.dirname, run: (g) => g });
`,
  );
  const r = lapidary(['compile', MODEL, '--plugin', path.join(dir, 'p.mjs'), '--list-passes']);
  expect(r.stderr).toBe('');
  expect(r.stdout).toMatch(new RegExp(`from-json +${path.join(dir, 'p.mjs').replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} ${dir.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`));
});

test('--batch/--seq take digits only (Number() also read 0x10, 1e3 and 4.0)', () => {
  for (const v of ['0x10', '1e3', '4.0', '-2', '0', 'abc']) {
    const r = lapidary(['stats', MODEL, '--seq', v]);
    expectCleanFailure(r);
    expect(r.stderr).toBe(`lapidary: error: option --seq takes a positive integer, got '${v}'\n`);
  }
  expect(JSON.parse(lapidary(['stats', MODEL, '--seq', '16', '--json']).stdout).nodes).toBeGreaterThan(0);
});

test('IR JSON given where a model file is expected is named as such (it was a parse error at 1:1)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lapidary-irjson-'));
  try {
    const json = path.join(dir, 'g.json');
    const ir = lapidary(['ir', 'gemma2.model', '--variant', '2b', '--seq', '8', '--json']);
    expect(ir.code).toBe(0);
    fs.writeFileSync(json, ir.stdout);
    for (const cmd of [['compile', json], ['stats', json], ['cost', json, '--chip', 'v5e', '--chips', '4', '--mesh', 'data=4', '--batch', '4', '--seq', '8']]) {
      const r = lapidary(cmd);
      expectCleanFailure(r);
      expect(r.stderr).toMatch(/is Lapidary IR JSON \(what `ir --json` and `compile -o` write\), not a model file/);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
