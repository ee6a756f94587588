/** TPU options a new user gets wrong (from a QA pass): each is one clear error or a readable figure. */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { expectCleanFailure, lapidary } from './helpers';
import { tokenCount } from '../../src/backends/tpu/report';

const PLAN = ['cost', 'gemma2.model', '--variant', '2b', '--chip', 'v5e', '--topology', '2x4', '--batch', '8', '--seq', '128'];

test('a misspelled or capitalised mesh axis is an error with a suggestion (it silently became an FSDP axis)', () => {
  const r = lapidary([...PLAN, '--mesh', 'data=2,modle=4']);
  expectCleanFailure(r);
  expect(r.stderr).toMatch(/^lapidary: error: --mesh: unknown axis name 'modle' \(did you mean 'model'\?\); an axis's name is its role: data\/fsdp\/batch\/dp/);
  const c = lapidary([...PLAN, '--mesh', 'data=2,Model=4']);
  expectCleanFailure(c);
  expect(c.stderr).toMatch(/unknown axis name 'Model' \(did you mean 'model'\? axis names are lower case\)/);
  expect(lapidary([...PLAN, '--mesh', 'fsdp=2,tp=4', '--json']).code).toBe(0);
});

test('--tokens: budgets print as written (10B, 1.5T), must be finite, and only apply to training', () => {
  const r = lapidary([...PLAN, '--mesh', 'data=8', '--mode', 'train', '--tokens', '1e10,1.5e12']);
  expect(r.code).toBe(0);
  expect(r.stdout).toMatch(/days +10B tokens: [\d.]+, 1\.5T tokens: [\d.]+/);
  const inf = lapidary([...PLAN, '--mesh', 'data=8', '--mode', 'train', '--tokens', 'Infinity']);
  expectCleanFailure(inf);
  expect(inf.stderr).toMatch(/option --tokens: 'Infinity' is not a positive finite number/);
  const fwd = lapidary([...PLAN, '--mesh', 'data=8', '--tokens', '1e10']);
  expectCleanFailure(fwd);
  expect(fwd.stderr).toMatch(/option --tokens .* only applies to --mode train \(this is --mode forward\)/);
  expect([13e12, 1.5e12, 2.5e11, 1e10, 5e8, 1234].map(tokenCount)).toEqual(['13T', '1.5T', '250B', '10B', '500M', '1.23K']);
  // And the printed forms are accepted back.
  const back = lapidary([...PLAN, '--mesh', 'data=8', '--mode', 'train', '--tokens', '1.5T,250B', '--json']);
  expect(JSON.parse(back.stdout).days.map((d: { tokens: number }) => d.tokens)).toEqual([1.5e12, 2.5e11]);
});

test('decode without --strategy keeps replicated weights when they fit (fsdp re-gathered every weight per token), and says why', () => {
  const llama = ['cost', 'examples/llama2.model', '--variant', '7b', '--chip', 'v5e', '--topology', '2x4', '--mesh', 'data=8', '--mode', 'decode', '--batch', '8', '--seq', '2048', '--json'];
  const dp = JSON.parse(lapidary(llama).stdout);
  expect(dp.strategy).toBe('dp');
  expect(dp.note).toMatch(/^strategy dp \(decode default: weights stay on each chip/);
  const fsdp = JSON.parse(lapidary([...llama, '--strategy', 'fsdp']).stdout);
  expect(fsdp.step_time_s).toBeGreaterThan(5 * dp.step_time_s);
  const big = JSON.parse(lapidary(['cost', 'gemma2.model', '--variant', '27b', ...llama.slice(4)]).stdout);
  expect(big.strategy).toBe('fsdp');
  expect(big.note).toMatch(/decode default dp does not fit/);
});

test('a model with no seq dim (an MLP over feature vectors) is planned, compiled and shown with --batch alone', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lapidary-mlp-'));
  try {
    const file = path.join(dir, 'mlp.model');
    fs.writeFileSync(
      file,
      `model mlp
hparams { d_in = 64; d_h = 256; n_out = 8 }
dim batch
forward(x: f32[batch, d_in]) {
  h = linear(x, param fc1.weight[d_h, d_in])
  return logits = linear(max(h, 0.0), param fc2.weight[n_out, d_h])
}
`,
    );
    const mesh = ['--chip', 'v5e', '--chips', '4', '--mesh', 'data=4', '--batch', '8'];
    const plan = lapidary(['cost', file, ...mesh, '--json']);
    expect(plan.code).toBe(0);
    expect(JSON.parse(plan.stdout).tokens_per_step).toBe(8);
    const seq = lapidary(['cost', file, ...mesh, '--seq', '4']);
    expectCleanFailure(seq);
    expect(seq.stderr).toMatch(/option --seq: .*mlp\.model declares no dim 'seq' \(its dims: batch\)/);
    const out = path.join(dir, 'out');
    expect(lapidary(['compile', file, '--target', 'tpu', ...mesh, '-o', out]).code).toBe(0);
    expect(fs.readFileSync(path.join(out, 'partitioned.hlo'), 'utf8')).toMatch(/bf16\[2,64\] parameter\(0\)/);
    expect(lapidary(['viz', file, ...mesh, '-o', path.join(dir, 'g.html')]).code).toBe(0);
    // Decode needs attention: cost refuses it as compile does (cost used to print a plan compile then refused).
    for (const cmd of [['cost', file], ['compile', file, '--target', 'tpu', '-o', path.join(dir, 'dec')]]) {
      const dec = lapidary([...cmd, ...mesh, '--mode', 'decode', '--context', '8']);
      expectCleanFailure(dec);
      expect(dec.stderr).toMatch(/decode: the model has no attention, .*: plan it with --mode forward/);
    }
    const train = lapidary(['cost', file, ...mesh, '--mode', 'train']);
    expectCleanFailure(train);
    expect(train.stderr).toMatch(/the training loss is next-token cross-entropy: it needs logits f32\[batch, seq, vocab\], got f32\[8, 8\]/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('decode takes --context alone (--seq defaults to it)', () => {
  const r = lapidary(['cost', 'gemma2.model', '--variant', '2b', '--chip', 'v5e', '--chips', '4', '--mesh', 'data=4', '--batch', '8', '--mode', 'decode', '--context', '512', '--json']);
  expect(r.code).toBe(0);
  expect(JSON.parse(r.stdout).context).toBe(512);
});

test('an axis that crosses slices over DCN with tensor parallelism or FSDP on it gets a note saying how to reorder', () => {
  const base = ['cost', 'gemma2.model', '--variant', '2b', '--chip', 'v5e', '--topology', '2x16x16', '--mode', 'train', '--batch', '512', '--seq', '8192', '--json'];
  const note = (mesh: string) => JSON.parse(lapidary([...base, '--mesh', mesh]).stdout).note ?? '';
  expect(note('model=2,data=256')).toMatch(/^mesh axis 'model' \(tensor parallel\) crosses slices over DCN; put a data axis first \(e\.g\. --mesh data=256,model=2\)/);
  expect(note('data=256,replica=2')).toMatch(/^FSDP axis 'data' crosses slices over DCN .*--mesh replica=2,data=256$/);
  expect(note('data=256,model=2')).toMatch(/--mesh replica=2,data=128,model=2$/);
  expect(note('replica=2,data=256')).not.toMatch(/DCN/);
  // Weights too small to split over 512 chips: nothing is gathered over DCN, so no note.
  const tiny = ['--hparam', 'vocab=64', '--hparam', 'd_model=32', '--hparam', 'n_layers=2', '--hparam', 'n_heads=4', '--hparam', 'n_ctx=16'];
  const r = lapidary(['cost', 'examples/gpt2.model', ...tiny, '--chip', 'v5e', '--chips', '512', '--mesh', 'data=512', '--batch', '512', '--seq', '16', '--json']);
  expect(r.code).toBe(0);
  expect(Object.values(JSON.parse(r.stdout).param_specs).every((spec) => !String(spec).includes('data'))).toBe(true);
  expect(JSON.parse(r.stdout).note ?? '').not.toMatch(/DCN/);
});

test('--mesh auto on several slices also tries FSDP within a slice and data parallelism across them (and ranks it first for 2B on two v5e pods)', () => {
  const r = lapidary(['cost', 'gemma2.model', '--variant', '2b', '--chip', 'v5e', '--chips', '512', '--mesh', 'auto', '--mode', 'train', '--batch', '512', '--seq', '8192', '--json']);
  expect(r.code).toBe(0);
  const plans = JSON.parse(r.stdout).plans;
  expect(plans[0].mesh).toBe('replica=2,data=256');
  expect(plans.map((p: { mesh: string }) => p.mesh)).toContain('data=512');
});

test('--chips beyond one pod splits into the fewest equal slices of a valid shape (two v5p pods = 17920 chips)', () => {
  const r = lapidary(['cost', 'gemma2.model', '--variant', '2b', '--chip', 'v5p', '--chips', '17920', '--mesh', 'data=17920', '--batch', '17920', '--seq', '1024', '--json']);
  expect(r.code).toBe(0);
  expect(JSON.parse(r.stdout).topology).toBe('2x16x20x28');
});

test('a plan that does not fit names a fix, and following it fits', () => {
  const plan = (args: string[]) => JSON.parse(lapidary(['cost', ...args, '--json']).stdout);
  const llama = ['examples/llama2.model', '--variant', '7b', '--chip', 'v5e', '--mode', 'train', '--seq', '2048'];
  const a = plan([...llama, '--topology', '2x4', '--mesh', 'data=8', '--batch', '8']);
  expect(a.fits).toBe(false);
  expect(a.why).toMatch(/more chips hold them \(9 at least, e\.g\. --chips 16\)/);
  expect(plan([...llama, '--chips', '16', '--mesh', 'data=16', '--batch', '16']).fits).toBe(true);
  const dec = ['gemma2.model', '--variant', '9b', '--chip', 'v5e', '--topology', '2x4', '--mesh', 'data=8', '--mode', 'decode', '--seq', '8192'];
  const b = plan([...dec, '--batch', '256']);
  expect(b.why).toMatch(/the KV cache grows with the batch: --batch (\d+) or less fits/);
  const fitting = b.why.match(/--batch (\d+) or less/)[1];
  expect(plan([...dec, '--batch', fitting]).fits).toBe(true);
  expect(plan(['gemma2.model', '--variant', '27b', '--chip', 'v5e', '--topology', '16x16', '--mesh', 'data=256', '--strategy', 'dp', '--mode', 'train', '--batch', '256', '--seq', '8192']).why).toMatch(/replicated on every chip under 'dp'; try fsdp$/);
  // On one chip FSDP has nothing to shard over: the fix is more chips, with fsdp (and following it fits).
  const one = ['gemma2.model', '--variant', '9b', '--chip', 'h100', '--mode', 'train', '--seq', '2048'];
  const c = plan([...one, '--chips', '1', '--mesh', 'data=1', '--strategy', 'dp', '--batch', '2']);
  expect(c.fits).toBe(false);
  expect(c.why).not.toMatch(/try fsdp/);
  expect(c.why).toMatch(/more chips hold them \(3 at least, e\.g\. --chips 4 --strategy fsdp\)/);
  expect(plan([...one, '--chips', '4', '--mesh', 'data=4', '--strategy', 'fsdp', '--batch', '8']).fits).toBe(true);
});

test('--mesh auto lists a plan once when data=1 makes two strategies the same; a tp-only plan that does not fit suggests fsdp+tp', () => {
  const auto = JSON.parse(lapidary(['cost', 'gemma2.model', '--variant', '9b', '--chip', 'v5e', '--chips', '8', '--mesh', 'auto', '--batch', '8', '--context', '4096', '--mode', 'decode', '--json']).stdout).plans;
  const keys = auto.map((p: { mesh: string; strategy: string }) => `${p.mesh} ${p.strategy}`);
  expect(keys.filter((k: string) => k.startsWith('data=1,model=8 '))).toEqual(['data=1,model=8 tp']);
  const tp = JSON.parse(lapidary(['cost', 'gemma2.model', '--variant', '9b', '--chip', 'v5e', '--topology', '2x16x16', '--mesh', 'data=64,model=8', '--strategy', 'tp', '--batch', '512', '--seq', '4096', '--mode', 'train', '--json']).stdout);
  expect(tp.fits).toBe(false);
  expect(tp.why).toMatch(/--strategy fsdp\+tp$/);
});
