/**
 * `lapidary train` and `lapidary distill-targets` end to end, as a user runs them (the built CLI): a tiny
 * Gemma 2 (the fixture's config.json, random init) on a synthetic token stream. Loss goes down, the checkpoint
 * loads in `run` and `generate`, a second invocation resumes, teacher targets are written, resumed and used,
 * and mistakes are clean errors.
 */
import * as fs from 'fs';
import * as path from 'path';
import { lapidary, expectCleanFailure } from '../cli/helpers';
import { makeTokenFolder } from './helpers';

const CONFIG = path.join(__dirname, '../fixtures/gemma2-tiny/config.json');
let tmp: string;
let data: string;
beforeAll(() => {
  ({ tmp, data } = makeTokenFolder('lapidary-train-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const readLog = (dir: string) =>
  fs
    .readFileSync(path.join(dir, 'train_log.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));

const trainArgs = (out: string, steps: number, extra: string[] = []) => ['train', 'gemma2.model', '--config', CONFIG, '--data', data, '--steps', String(steps), '--batch', '4', '--seq', '16', '--lr', '3e-3', '--out', out, ...extra];

test('train: loss decreases, the checkpoint loads in run and generate, and a second call resumes', () => {
  const out = path.join(tmp, 'ck');
  const r = lapidary(trainArgs(out, 12));
  expect(r.stderr).toMatch(/wrote .*step 12/);
  expect(r.code).toBe(0);
  for (const f of ['config.json', 'model.safetensors', 'optimizer.safetensors', 'trainer_state.json']) expect(fs.existsSync(path.join(out, f))).toBe(true);
  const log = readLog(out);
  expect(log.map((l) => l.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  const mean = (xs: { loss: number }[]) => xs.reduce((a, l) => a + l.loss, 0) / xs.length;
  expect(mean(log.slice(-3))).toBeLessThan(mean(log.slice(0, 3)) - 0.5);
  expect(log[0].tokens_per_s).toBeGreaterThan(0);

  const ids = path.join(tmp, 'ids.json');
  fs.writeFileSync(ids, '[[2, 9, 16, 23]]');
  const run = lapidary(['run', 'gemma2.model', '--checkpoint', out, '--input-ids', ids]);
  expect(run.code).toBe(0);
  expect(run.stdout).toMatch(/logits f32\[1, 4, 512\]/);
  const gen = lapidary(['generate', 'gemma2.model', '--checkpoint', out, '--prompt-ids', '2,9,16,23', '--max-new-tokens', '4', '--json']);
  expect(gen.code).toBe(0);
  expect(JSON.parse(gen.stdout).ids.length).toBeGreaterThanOrEqual(4);

  const again = lapidary(trainArgs(out, 14));
  expect(again.code).toBe(0);
  expect(again.stderr).toMatch(/resuming from .* at step 12/);
  expect(readLog(out).map((l) => l.step).slice(-3)).toEqual([12, 13, 14]);
  expect(JSON.parse(fs.readFileSync(path.join(out, 'trainer_state.json'), 'utf8')).step).toBe(14);

  // distill-targets from the trained model, resumable; then distillation training with them
  const tg = path.join(tmp, 'targets');
  const tArgs = ['distill-targets', 'gemma2.model', '--checkpoint', out, '--tokens', data, '--k', '4', '--seq', '16', '--batch', '4', '--out', tg, '--shard-windows', '6', '--max-sequences', '10'];
  const t1 = lapidary(tArgs);
  expect(t1.code).toBe(0);
  expect(fs.readdirSync(tg).sort()).toEqual(['targets-00000.safetensors', 'targets-00001.safetensors', 'targets.json']);
  const mtime = fs.statSync(path.join(tg, 'targets-00000.safetensors')).mtimeMs;
  const t2 = lapidary(tArgs);
  expect(t2.code).toBe(0);
  expect(t2.stderr).toMatch(/already done/);
  expect(fs.statSync(path.join(tg, 'targets-00000.safetensors')).mtimeMs).toBe(mtime);
  const st = path.join(tmp, 'student');
  const d = lapidary(trainArgs(st, 3, ['--targets', tg, '--distill-weight', '0.5']));
  expect(d.code).toBe(0);
  const dl = readLog(st);
  expect(dl[2].distill_loss).toBeGreaterThan(0);
  expect(dl[2].ce_loss).toBeGreaterThan(0);
  expect(dl[2].loss).toBeCloseTo(0.5 * dl[2].ce_loss + 0.5 * dl[2].distill_loss, 4);

  const mismatch = lapidary(trainArgs(path.join(tmp, 'x'), 1, ['--targets', tg]).map((a) => (a === '16' ? '8' : a)));
  expect(mismatch.code).toBe(1);
  expect(mismatch.stderr).toMatch(/made with --seq 16, training uses --seq 8/);
});

test.each([
  [['--data', 'missing.json'], /cannot read token file 'missing.json': no such file/],
  [['--distill-weight', '0.3'], /--distill-weight needs --targets/],
  [['--lr', '-1'], /option --lr takes a number > 0, got '-1'/],
  [['--remat', 'some'], /Allowed choices are save-all, layer-inputs, matmul-outputs/],
  [['--hparam', 'n_layers'], /option --hparam takes name=value \(e.g. --hparam n_layers=4\), got 'n_layers'/],
  [['--hparam', 'n_layerz=2'], /option --hparam: unknown hyperparameter 'n_layerz' \(did you mean 'n_layers'\?\)/],
  [['--hparam', 'n_layers=two'], /option --hparam: hyperparameter 'n_layers' takes a number \(26 by default\), not the string "two"/],
])('clean user error for %j', (extra, msg) => {
  const args = trainArgs(path.join(tmp, 'bad'), 1);
  for (let i = 0; i < extra.length; i += 2) {
    const at = args.indexOf(extra[i]);
    if (at >= 0) args[at + 1] = extra[i + 1];
    else args.push(extra[i], extra[i + 1]);
  }
  const r = lapidary(args);
  expect(r.code).toBe(1);
  expect(r.stderr).toMatch(msg);
  expect(r.stderr).not.toMatch(/\n\s+at /);
});

test('train from a variant and --hparam alone: the written config.json loads back in run, and resumes without the flags', () => {
  const out = path.join(tmp, 'variant');
  const sizes = ['vocab=80', 'd_model=32', 'n_layers=2', 'd_ff=48', 'n_heads=2', 'n_kv_heads=1', 'head_dim=16', 'query_scalar=16', 'window=0', 'attn_cap=0', 'max_pos=64'];
  const args = (steps: number, flags: string[]) => ['train', 'gemma2.model', ...flags, '--data', data, '--steps', String(steps), '--batch', '2', '--seq', '16', '--out', out];
  const r = lapidary(args(2, ['--variant', '9b', ...sizes.flatMap((h) => ['--hparam', h])]));
  expect(r.stderr).not.toMatch(/warning/);
  expect(r.code).toBe(0);
  const cfg = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8'));
  // the model file's `config {}` mapping read backwards: first key per hparam, nested keys nested, null values null
  expect(cfg).toMatchObject({ vocab_size: 80, hidden_size: 32, num_hidden_layers: 2, intermediate_size: 48, num_attention_heads: 2, num_key_value_heads: 1, head_dim: 16 });
  expect(cfg).toMatchObject({ sliding_window: null, attn_logit_softcapping: null, final_logit_softcapping: 30, rope_parameters: { rope_theta: 10000 }, max_position_embeddings: 64 });
  expect(cfg.rope_theta).toBe(10000); // both layouts: transformers 5 reads rope_parameters, 4.x rope_theta

  const ids = path.join(tmp, 'ids-variant.json');
  fs.writeFileSync(ids, '[[2, 9, 16]]');
  const run = lapidary(['run', 'gemma2.model', '--checkpoint', out, '--input-ids', ids]);
  expect(run.code).toBe(0);
  expect(run.stdout).toMatch(/logits f32\[1, 3, 80\]/);

  // Resuming with a changed hyperparameter that no tensor shape shows is refused (it trained window 0 → 8 silently).
  const changed = lapidary(args(3, ['--hparam', 'window=8']));
  expectCleanFailure(changed);
  expect(changed.stderr).toMatch(/holds a run with other hyperparameters than this call \(window 0 → 8\); resume without changing them, or pass --no-resume/);
  const again = lapidary(args(3, []));
  expect(again.code).toBe(0);
  expect(again.stderr).toMatch(/resuming from .* at step 2/);
  // One token per sequence leaves nothing to predict: refused, not a 'loss 0' run.
  const one = lapidary(['train', 'gemma2.model', '--variant', '9b', ...sizes.flatMap((h) => ['--hparam', h]), '--data', data, '--steps', '1', '--batch', '1', '--seq', '1', '--out', path.join(tmp, 'seq1')]);
  expectCleanFailure(one);
  expect(one.stderr).toMatch(/--seq 1: a training sequence needs at least 2 tokens/);
});

test("--out never overwrites the user's files: a folder train did not write, a file, a --log in a missing folder (refused before any work)", () => {
  const mine = path.join(tmp, 'users-checkpoint');
  fs.mkdirSync(mine);
  fs.writeFileSync(path.join(mine, 'config.json'), '{"mine": 1}');
  fs.writeFileSync(path.join(mine, 'model.safetensors'), 'precious weights');
  let r = lapidary(trainArgs(mine, 1));
  expectCleanFailure(r);
  expect(r.stderr).toMatch(/--out '.*users-checkpoint' holds config\.json, model\.safetensors that `lapidary train` did not write/);
  expect(fs.readFileSync(path.join(mine, 'config.json'), 'utf8')).toBe('{"mine": 1}');
  expect(fs.readFileSync(path.join(mine, 'model.safetensors'), 'utf8')).toBe('precious weights');
  // A file that merely has the name of train's optimizer state or log does not make the folder train's.
  const mine2 = path.join(tmp, 'users-run');
  fs.mkdirSync(mine2);
  fs.writeFileSync(path.join(mine2, 'optimizer.safetensors'), 'keep');
  fs.writeFileSync(path.join(mine2, 'train_log.jsonl'), 'my log\n');
  r = lapidary(trainArgs(mine2, 1));
  expectCleanFailure(r);
  expect(r.stderr).toMatch(/holds optimizer\.safetensors, train_log\.jsonl that `lapidary train` did not write/);
  expect(fs.readFileSync(path.join(mine2, 'optimizer.safetensors'), 'utf8')).toBe('keep');
  expect(fs.readFileSync(path.join(mine2, 'train_log.jsonl'), 'utf8')).toBe('my log\n');
  // --out the --checkpoint folder itself: named as such (it was told to 'pass it as --checkpoint', which it was).
  r = lapidary(['train', 'gemma2.model', '--checkpoint', 'tests/fixtures/gemma2-tiny', '--out', 'tests/fixtures/gemma2-tiny', '--data', data, '--batch', '1', '--seq', '8', '--steps', '1']);
  expectCleanFailure(r);
  expect(r.stderr).toMatch(/--out '.*gemma2-tiny' is the --checkpoint folder; training writes a new checkpoint/);
  const file = path.join(tmp, 'a-file');
  fs.writeFileSync(file, 'x');
  r = lapidary(trainArgs(file, 1));
  expectCleanFailure(r);
  expect(r.stderr).toMatch(/--out '.*a-file' is a file/);
  r = lapidary(trainArgs(path.join(tmp, 'fresh'), 1, ['--log', path.join(tmp, 'no-such-dir', 'log.jsonl')]));
  expectCleanFailure(r);
  expect(r.stderr).toMatch(/--log '.*log\.jsonl': the directory '.*no-such-dir' does not exist/);
  expect(fs.existsSync(path.join(tmp, 'fresh'))).toBe(false);
  // digits only, like --batch/--seq elsewhere: '1e1' was read as 10
  r = lapidary(trainArgs(path.join(tmp, 'fresh'), 1, ['--save-every', '1e1']));
  expectCleanFailure(r);
  expect(r.stderr).toMatch(/option --save-every takes a positive integer, got '1e1'/);
});

test("--no-resume over an earlier run starts a fresh default log (steps were appended to the old run's)", () => {
  const out = path.join(tmp, 'restart');
  expect(lapidary(trainArgs(out, 2)).code).toBe(0);
  expect(lapidary(trainArgs(out, 1, ['--no-resume'])).code).toBe(0);
  expect(readLog(out).map((l) => l.step)).toEqual([1]);
});

test("distill-targets --out: a file, another tool's targets.json, a non-JSON one, another --seed are clean errors; the user's file is kept", () => {
  const args = (out: string, extra: string[] = []) => ['distill-targets', 'gemma2.model', '--checkpoint', 'tests/fixtures/gemma2-tiny', '--tokens', data, '--k', '2', '--seq', '16', '--max-sequences', '2', '--out', out, ...extra];
  const file = path.join(tmp, 'targets-file');
  fs.writeFileSync(file, 'x');
  let r = lapidary(args(file));
  expectCleanFailure(r);
  expect(r.stderr).toMatch(/--out '.*targets-file' is a file/);
  const other = path.join(tmp, 'other-targets');
  fs.mkdirSync(other);
  for (const [text, msg] of [
    ['not json', /targets\.json: not valid JSON .*use another --out folder/],
    ['{"k": 2}', /targets\.json: not written by `lapidary distill-targets` \(format undefined\); refusing to overwrite it/],
  ] as const) {
    fs.writeFileSync(path.join(other, 'targets.json'), text);
    r = lapidary(args(other));
    expectCleanFailure(r);
    expect(r.stderr).toMatch(msg);
    expect(fs.readFileSync(path.join(other, 'targets.json'), 'utf8')).toBe(text);
  }
  // Shards by our names but no targets.json: someone else's; kept.
  const shardsOnly = path.join(tmp, 'shards-only');
  fs.mkdirSync(shardsOnly);
  fs.writeFileSync(path.join(shardsOnly, 'targets-00000.safetensors'), 'mine');
  r = lapidary(args(shardsOnly));
  expectCleanFailure(r);
  expect(r.stderr).toMatch(/holds targets-00000\.safetensors but no targets\.json: not written by `lapidary distill-targets`; refusing to overwrite/);
  expect(fs.readFileSync(path.join(shardsOnly, 'targets-00000.safetensors'), 'utf8')).toBe('mine');
  expect(fs.existsSync(path.join(shardsOnly, 'targets.json'))).toBe(false);
  const sampled = path.join(tmp, 'sampled');
  expect(lapidary(args(sampled, ['--strategy', 'sample', '--seed', '1'])).code).toBe(0);
  r = lapidary(args(sampled, ['--strategy', 'sample', '--seed', '2']));
  expectCleanFailure(r);
  expect(r.stderr).toMatch(/sampled with --seed 1, now 2; use the same seed to resume/);
  expect(lapidary(args(sampled, ['--strategy', 'sample', '--seed', '1'])).code).toBe(0);
});
