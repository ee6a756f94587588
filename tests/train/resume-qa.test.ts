/**
 * QA fixes to `lapidary train`'s start / resume / stop behaviour (the built CLI, a tiny model):
 * a folder holding only our own train_log.jsonl (a first run stopped before its first save) is ours; Ctrl-C saves
 * and exits 130 (a second exits unsaved); a resume drops log lines of steps after the checkpoint; a resume keeps
 * the saved learning-rate schedule unless told otherwise and names changes; teacher-target shards are all checked
 * before step 1; a non-finite loss before any update is not blamed on the learning rate.
 */
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { lapidary, expectCleanFailure, BIN, ROOT } from '../cli/helpers';
import { learningRate } from '../../src/train/trainer';
import { makeTokenFolder } from './helpers';

jest.setTimeout(120_000);

const CONFIG = path.join(__dirname, '../fixtures/gemma2-tiny/config.json');
let tmp: string;
let data: string;
beforeAll(() => {
  ({ tmp, data } = makeTokenFolder('lapidary-resume-qa-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const SIZES = ['n_layers=1', 'd_model=32', 'vocab=80', 'd_ff=32', 'n_heads=2', 'n_kv_heads=1', 'head_dim=16', 'query_scalar=16'];
const tiny = (out: string, steps: number, extra: string[] = [], sizes = SIZES) => [
  'train', 'gemma2.model', '--variant', '2b', ...sizes.flatMap((h) => ['--hparam', h]),
  '--data', data, '--batch', '2', '--seq', '16', '--steps', String(steps), '--out', out, ...extra,
];
const logLines = (dir: string) => fs.readFileSync(path.join(dir, 'train_log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
const steps = (dir: string) => logLines(dir).map((l) => l.step);
const state = (dir: string) => JSON.parse(fs.readFileSync(path.join(dir, 'trainer_state.json'), 'utf8'));

/** Runs train in the background; once train_log.jsonl exists, sends SIGINT after each of `delays` (ms). */
function interrupt(args: string[], out: string, delays: number[]): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    p.stderr.on('data', (d) => (stderr += d));
    const iv = setInterval(() => {
      if (!fs.existsSync(path.join(out, 'train_log.jsonl'))) return;
      clearInterval(iv);
      for (const d of delays) setTimeout(() => p.kill('SIGINT'), d);
    }, 10);
    p.on('exit', (code, signal) => {
      clearInterval(iv);
      resolve({ code, signal, stderr });
    });
  });
}

test('a folder holding only the train_log.jsonl of a run stopped before its first save starts over; a foreign log is still refused', () => {
  const out = path.join(tmp, 'log-only');
  expect(lapidary(tiny(out, 3)).code).toBe(0);
  for (const f of fs.readdirSync(out)) if (f !== 'train_log.jsonl') fs.rmSync(path.join(out, f));
  for (const extra of [[], ['--no-resume']]) {
    const r = lapidary(tiny(out, 2, extra));
    expect(r.stderr).not.toMatch(/did not write/);
    expect(r.code).toBe(0);
    expect(steps(out)).toEqual([1, 2]); // replaced, not appended to
    for (const f of fs.readdirSync(out)) if (f !== 'train_log.jsonl') fs.rmSync(path.join(out, f));
  }
  // Not our shape: an extra key, a missing one, a non-JSON line (complete, or a last one without a newline that is
  // not the start of a step line), a blank line: refused and kept.
  const line = JSON.stringify(logLines(out)[0]);
  for (const text of [line.replace('{', '{"note":"mine",') + '\n', line.replace(/"ms":[^,]*,/, '') + '\n', `${line}\nmy notes\n`, `${line}\nmy notes`, '\n', `${line}\n{"step":1}`]) {
    fs.writeFileSync(path.join(out, 'train_log.jsonl'), text);
    const r = lapidary(tiny(out, 1, ['--no-resume']));
    expectCleanFailure(r);
    expect(r.stderr).toMatch(/holds train_log\.jsonl that `lapidary train` did not write/);
    expect(fs.readFileSync(path.join(out, 'train_log.jsonl'), 'utf8')).toBe(text);
  }
});

test('a log-only folder whose last line was cut short (killed mid-write), or an empty log, is ours: starts fresh', () => {
  const out = path.join(tmp, 'log-cut');
  expect(lapidary(tiny(out, 4)).code).toBe(0);
  const full = fs.readFileSync(path.join(out, 'train_log.jsonl'), 'utf8').split('\n');
  for (const f of fs.readdirSync(out)) fs.rmSync(path.join(out, f));
  // 3 good lines then 40 bytes of the 4th; an empty file; only the start of a first line
  for (const text of [full.slice(0, 3).join('\n') + '\n' + full[3].slice(0, 40), '', full[0].slice(0, 5)]) {
    fs.writeFileSync(path.join(out, 'train_log.jsonl'), text);
    const r = lapidary(tiny(out, 2));
    expect(r.stderr).not.toMatch(/did not write|--checkpoint/);
    expect(r.code).toBe(0);
    expect(steps(out)).toEqual([1, 2]); // a fresh log, not appended to the cut one
    for (const f of fs.readdirSync(out)) fs.rmSync(path.join(out, f));
  }
});

test('Ctrl-C finishes the step, saves and exits 130 with one line; the same command resumes', async () => {
  const out = path.join(tmp, 'sigint');
  const r = await interrupt(tiny(out, 100000), out, [0]);
  expect(r.code).toBe(130);
  expect(r.stderr).toMatch(/^lapidary: interrupted: saved .*sigint at step \d+ of 100000 \(loss [\d.]+\); run the same command to resume$/m);
  const at = state(out).step;
  expect(at).toBeGreaterThanOrEqual(1);
  expect(steps(out)).toEqual(Array.from({ length: at }, (_, i) => i + 1));
  const again = lapidary(tiny(out, at + 2));
  expect(again.code).toBe(0);
  expect(again.stderr).toMatch(new RegExp(`resuming from .* at step ${at}`));
  expect(steps(out)).toEqual(Array.from({ length: at + 2 }, (_, i) => i + 1));
});

test('a second Ctrl-C exits at once without saving; the folder (only our log) then starts over', async () => {
  const out = path.join(tmp, 'sigint2');
  // steps of about a second, so that both signals come during one step
  const slow = ['n_layers=2', 'd_model=256', 'vocab=80', 'd_ff=512', 'n_heads=2', 'n_kv_heads=1', 'head_dim=128', 'query_scalar=16'];
  const args = tiny(out, 100000, [], slow).map((a) => (a === '16' ? '256' : a));
  const r = await interrupt(args, out, [50, 150]);
  expect(r.code === 130 || r.signal === 'SIGINT').toBe(true);
  expect(r.stderr).not.toMatch(/saved/);
  expect(fs.existsSync(path.join(out, 'trainer_state.json'))).toBe(false);
  expect(fs.readdirSync(out)).toEqual(['train_log.jsonl']);
  const again = lapidary(tiny(out, 2));
  expect(again.code).toBe(0);
  expect(steps(out)).toEqual([1, 2]);
});

test('resuming drops log lines of steps after the checkpoint (they were appended twice, the stale last one kept)', () => {
  const out = path.join(tmp, 'stale');
  expect(lapidary(tiny(out, 2)).code).toBe(0);
  // as if the run had logged steps 3 and 4 after its save at step 2 and was then killed (step 4's line cut short)
  const last = logLines(out)[1];
  fs.appendFileSync(path.join(out, 'train_log.jsonl'), JSON.stringify({ ...last, step: 3 }) + '\n' + JSON.stringify({ ...last, step: 4 }).slice(0, 20));
  const r = lapidary(tiny(out, 4));
  expect(r.code).toBe(0);
  expect(r.stderr).toMatch(/dropped 2 lines of steps after 2/);
  expect(steps(out)).toEqual([1, 2, 3, 4]);
  expect(logLines(out)[2].loss).not.toBe(last.loss);
});

test('resume keeps the saved --lr/--schedule/--warmup unless given, and names a change', () => {
  const out = path.join(tmp, 'sched');
  expect(lapidary(tiny(out, 4, ['--lr', '3e-3', '--schedule', 'cosine', '--warmup', '1'])).code).toBe(0);
  expect(state(out)).toMatchObject({ step: 4, lr: 0.003, schedule: 'cosine', warmup: 1, steps: 4 });
  let r = lapidary(tiny(out, 6));
  expect(r.code).toBe(0);
  expect(r.stderr).toMatch(/continuing the saved learning-rate schedule: --lr 0\.003 --schedule cosine --warmup 1 \(give them to change it\)/);
  expect(r.stderr).toMatch(/warning: --steps 6 changes the cosine horizon \(the saved run decays over 4 steps\)/);
  const sched = { lr: 3e-3, schedule: 'cosine' as const, warmup: 1 };
  for (const l of logLines(out).slice(4)) expect(l.lr).toBeCloseTo(learningRate(l.step, 6, sched), 9);
  r = lapidary(tiny(out, 7, ['--lr', '1e-3', '--schedule', 'constant']));
  expect(r.code).toBe(0);
  expect(r.stderr).toMatch(/warning: the learning-rate schedule changes on resume: --lr 0\.003 → 0\.001, --schedule cosine → constant/);
  expect(r.stderr).not.toMatch(/cosine horizon/);
  expect(logLines(out)[6].lr).toBeCloseTo(1e-3, 9);
  expect(state(out)).toMatchObject({ lr: 0.001, schedule: 'constant', warmup: 1, steps: 7 });
  // the same values given again: nothing to say
  r = lapidary(tiny(out, 8, ['--lr', '1e-3', '--schedule', 'constant', '--warmup', '1']));
  expect(r.code).toBe(0);
  expect(r.stderr).not.toMatch(/schedule/);
});

test('--targets: every shard is checked before step 1 (a truncated or missing one names the file)', () => {
  const tg = path.join(tmp, 'targets');
  const t = lapidary(['distill-targets', 'gemma2.model', '--checkpoint', 'tests/fixtures/gemma2-tiny', '--tokens', data, '--k', '2', '--seq', '16', '--batch', '2', '--shard-windows', '2', '--max-sequences', '6', '--out', tg]);
  expect(t.code).toBe(0);
  const args = (out: string) => ['train', 'gemma2.model', '--config', CONFIG, '--data', data, '--targets', tg, '--batch', '2', '--seq', '16', '--steps', '30', '--out', out];
  const shard1 = path.join(tg, 'targets-00001.safetensors');
  const bytes = fs.readFileSync(shard1);
  fs.writeFileSync(shard1, bytes.subarray(0, bytes.length - 10));
  let r = lapidary(args(path.join(tmp, 'st1')));
  expectCleanFailure(r);
  expect(r.stderr).toMatch(/targets-00001\.safetensors.*truncated/);
  expect(fs.existsSync(path.join(tmp, 'st1'))).toBe(false); // before any step
  fs.writeFileSync(shard1, bytes);
  fs.rmSync(path.join(tg, 'targets-00002.safetensors'));
  r = lapidary(args(path.join(tmp, 'st2')));
  expectCleanFailure(r);
  expect(r.stderr).toMatch(/shard targets-00002\.safetensors is missing/);
  expect(fs.existsSync(path.join(tmp, 'st2'))).toBe(false);
});

test('a non-finite loss at step 1 (before any update) blames the hyperparameters or weights, not the learning rate', () => {
  const r = lapidary(tiny(path.join(tmp, 'nan'), 3, ['--hparam', 'eps=-1']));
  expectCleanFailure(r);
  expect(r.stderr).toMatch(/the initial loss is NaN \(step 1's forward, before any update\): not the learning rate; the model's hyperparameters \(--hparam, --config\) or the random init/);
  expect(r.stderr).not.toMatch(/smaller --lr/);
});

test('a resume whose saved optimizer state is gone says how to start over (it said only "cannot open (ENOENT)")', () => {
  const out = path.join(tmp, 'no-optimizer');
  expect(lapidary(tiny(out, 2)).code).toBe(0);
  fs.rmSync(path.join(out, 'optimizer.safetensors'));
  const r = lapidary(tiny(out, 4));
  expectCleanFailure(r);
  expect(r.stderr).toMatch(/cannot resume from .*no-optimizer \(trainer_state\.json says step 2\): .*optimizer\.safetensors.*; pass --no-resume to start over there/);
  expect(lapidary(tiny(out, 4, ['--no-resume'])).code).toBe(0);
});
