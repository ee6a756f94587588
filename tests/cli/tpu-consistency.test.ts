import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { lapidary, ROOT } from './helpers';

const CFG = path.join(ROOT, 'tests/fixtures/gemma2-tiny/config.json');
/** The tiny model on a 2x2 v5e mesh (4 sequences of 16 tokens): what every test here compiles. */
const TINY_TPU = ['gemma2.model', '--config', CFG, '--chip', 'v5e', '--topology', '2x2', '--mesh', 'data=2,model=2', '--batch', '4', '--seq', '16'];
const REPORTED = ['step_time_s', 'mfu', 'tokens_per_s_per_chip', 'memory_per_chip_bytes', 'fits'];

/** Run `fn` with a fresh temporary folder, removed afterwards. */
function inTmp(fn: (dir: string) => void): void {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lapidary-tpu-'));
  try {
    fn(dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// `lapidary compile --target tpu` writes cost.json; `lapidary cost --json` prints the plan. Same options, same plan.
test('compile --target tpu and cost agree on the plan they report', () =>
  inTmp((out) => {
    const mode = ['--mode', 'train'];
    const c = lapidary(['compile', ...TINY_TPU, ...mode, '--target', 'tpu', '-o', path.join(out, 'prog')]);
    expect(c.stderr).toBe('');
    expect(c.code).toBe(0);
    const fromCompile = JSON.parse(fs.readFileSync(path.join(out, 'prog', 'cost.json'), 'utf8'));
    const r = lapidary(['cost', ...TINY_TPU, ...mode, '--json']);
    expect(r.code).toBe(0);
    const fromCost = JSON.parse(r.stdout);
    for (const k of REPORTED) expect(fromCompile[k]).toEqual(fromCost[k]);
    expect(fs.readFileSync(path.join(out, 'prog', 'program.mlir'), 'utf8')).toMatch(/bf16/);
  }));

// --mode decode writes the decode-step programs (KV caches in and out); its cost.json is `cost --mode decode`'s plan.
test('compile --target tpu --mode decode writes the decode step, and its plan is the one cost reports', () =>
  inTmp((out) => {
    const mode = ['--mode', 'decode', '--context', '32'];
    const c = lapidary(['compile', ...TINY_TPU, ...mode, '--target', 'tpu', '-o', path.join(out, 'prog')]);
    expect(c.stderr).toBe('');
    expect(c.code).toBe(0);
    expect(c.stdout).toMatch(/decode step \(KV caches of 32 positions in and out\)/);
    const mlir = fs.readFileSync(path.join(out, 'prog', 'program.mlir'), 'utf8');
    // Local layers keep a ring of `sliding_window` (4) positions, global layers the context (32).
    expect(mlir).toMatch(/tensor<4x2x4x16xbf16> \{jax\.arg_info = "cache\.model\.layers\.0\.self_attn\.k"/);
    expect(mlir).toMatch(/tensor<4x2x32x16xbf16> \{jax\.arg_info = "cache\.model\.layers\.1\.self_attn\.k"/);
    expect(mlir).toMatch(/tensor<4x1x512xbf16> \{jax\.result_info = "logits"/);
    expect(fs.readFileSync(path.join(out, 'prog', 'partitioned.hlo'), 'utf8')).toMatch(/dynamic-update-slice\(/);
    const fromCompile = JSON.parse(fs.readFileSync(path.join(out, 'prog', 'cost.json'), 'utf8'));
    const r = lapidary(['cost', ...TINY_TPU, ...mode, '--json']);
    expect(r.code).toBe(0);
    const fromCost = JSON.parse(r.stdout);
    expect(fromCompile.mode).toBe('decode');
    for (const k of REPORTED) expect(fromCompile[k]).toEqual(fromCost[k]);
  }));

test('compile --mode decode without attention fusion is a clear error, not a stack trace, and writes nothing', () =>
  inTmp((out) => {
    const r = lapidary(['compile', ...TINY_TPU, '--no-pass', 'attention-fusion', '--target', 'tpu', '--mode', 'decode', '-o', path.join(out, 'prog')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^lapidary: error: decode step: the graph has no fused_attention \(the decode step needs the attention-fusion pass/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(fs.existsSync(path.join(out, 'prog'))).toBe(false);
  }));

test('compile --target tpu never overwrites a cost.json (or program) it did not write; its own earlier output is replaced', () =>
  inTmp((out) => {
    const args = ['compile', ...TINY_TPU, '--target', 'tpu', '-o', out];
    fs.writeFileSync(path.join(out, 'cost.json'), '{"mine": true}\n');
    fs.writeFileSync(path.join(out, 'notes.txt'), 'keep\n');
    // Names the old writer used for its temporary files: a user's files of those names must survive too.
    fs.writeFileSync(path.join(out, 'program.mlir.tmp'), 'mine\n');
    fs.writeFileSync(path.join(out, 'cost.json.tmp'), 'mine\n');
    const r = lapidary(args);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/holds cost\.json that `compile --target tpu` did not write \(its cost\.json does not list them\); refusing to overwrite/);
    expect(fs.readFileSync(path.join(out, 'cost.json'), 'utf8')).toBe('{"mine": true}\n');
    expect(fs.existsSync(path.join(out, 'program.mlir'))).toBe(false);
    fs.rmSync(path.join(out, 'cost.json'));
    expect(lapidary(args).code).toBe(0); // other files in the folder are fine
    expect(lapidary(args).code).toBe(0); // and so is its own earlier output
    for (const f of ['program.mlir.tmp', 'cost.json.tmp']) expect(fs.readFileSync(path.join(out, f), 'utf8')).toBe('mine\n');
    expect(fs.readFileSync(path.join(out, 'notes.txt'), 'utf8')).toBe('keep\n');
    const cost = JSON.parse(fs.readFileSync(path.join(out, 'cost.json'), 'utf8'));
    expect(cost.mesh).toBe('data=2,model=2');
    expect(cost.written_by).toEqual({ tool: 'lapidary compile --target tpu', files: ['program.mlir', 'program.hlo', 'partitioned.mlir', 'partitioned.hlo', 'cost.json'] });
    expect(fs.readdirSync(out).filter((f) => f.endsWith('.tmp') && f.startsWith('.'))).toEqual([]);
  }));

test('a plan saved by `cost --json` is not ownership: a hand-edited program beside it is refused', () =>
  inTmp((out) => {
    const plan = lapidary(['cost', ...TINY_TPU, '--json']);
    expect(plan.code).toBe(0);
    fs.writeFileSync(path.join(out, 'cost.json'), plan.stdout);
    fs.writeFileSync(path.join(out, 'program.mlir'), '// my edits\n');
    const r = lapidary(['compile', ...TINY_TPU, '--target', 'tpu', '-o', out]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/holds program\.mlir, cost\.json that `compile --target tpu` did not write/);
    expect(fs.readFileSync(path.join(out, 'program.mlir'), 'utf8')).toBe('// my edits\n');
  }));

test('-o under a file or where nothing can be created is a clean error (it was a stack trace, and /proc hung)', () => {
  const args = ['compile', ...TINY_TPU, '--target', 'tpu', '-o'];
  const underFile = lapidary([...args, path.join(CFG, 'sub')]);
  expect(underFile.code).toBe(1);
  expect(underFile.stderr).toMatch(/^lapidary: error: -o '.*config\.json\/sub': '.*config\.json' exists and is not a directory/);
  const proc = lapidary([...args, '/proc/lapidary-nope/deeper']);
  expect(proc.code).toBe(1);
  expect(proc.stderr).toMatch(/^lapidary: error: -o '\/proc\/lapidary-nope\/deeper': cannot create '\/proc\/lapidary-nope'/);
});

test("an output folder of an older lapidary (cost.json without written_by, all five files) is still replaced, with a note", () =>
  inTmp((out) => {
    const args = ['compile', ...TINY_TPU, '--target', 'tpu', '-o', out];
    expect(lapidary(args).code).toBe(0);
    const costFile = path.join(out, 'cost.json');
    const { written_by: _w, ...old } = JSON.parse(fs.readFileSync(costFile, 'utf8'));
    fs.writeFileSync(costFile, JSON.stringify(old));
    const r = lapidary(args);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/replacing an earlier output in .* \(written before cost\.json recorded its files\)/);
    expect(JSON.parse(fs.readFileSync(costFile, 'utf8')).written_by).toBeDefined();
  }));
