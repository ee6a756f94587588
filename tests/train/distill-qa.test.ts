/**
 * QA: one `distill-targets` folder holds one teacher's targets. Resuming (or rerunning a finished folder) with
 * another teacher checkpoint, changed teacher files or another model file is refused with both values named (compared by
 * content where targets.json records it: the same teacher at another path resumes with a note);
 * a targets.json of an older version (no fingerprint, no model record) is still resumed, with a warning.
 */
import * as fs from 'fs';
import * as path from 'path';
import { lapidary, expectCleanFailure } from '../cli/helpers';
import { makeTokenFolder } from './helpers';

const TINY = path.join(__dirname, '../fixtures/gemma2-tiny');
let tmp: string;
let data: string;
beforeAll(() => {
  ({ tmp, data } = makeTokenFolder('lapidary-distill-qa-', 400));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const copyTeacher = (name: string) => {
  const dir = path.join(tmp, name);
  fs.mkdirSync(dir);
  for (const f of ['config.json', 'model.safetensors']) fs.copyFileSync(path.join(TINY, f), path.join(dir, f));
  return dir;
};
const args = (model: string, teacher: string, out: string) =>
  ['distill-targets', model, '--checkpoint', teacher, '--tokens', data, '--k', '2', '--seq', '16', '--batch', '2', '--shard-windows', '2', '--max-sequences', '4', '--out', out];
const readMeta = (out: string) => JSON.parse(fs.readFileSync(path.join(out, 'targets.json'), 'utf8'));

test('another --checkpoint (finished or partial folder) is refused, naming both; targets.json and shards are untouched', () => {
  const a = copyTeacher('teacher-a');
  const b = copyTeacher('teacher-b'); // another checkpoint: its config differs
  const cfgB = path.join(b, 'config.json');
  fs.writeFileSync(cfgB, JSON.stringify({ ...JSON.parse(fs.readFileSync(cfgB, 'utf8')), _note: 'another teacher' }));
  const out = path.join(tmp, 'targets-ab');
  const first = lapidary(args('gemma2.model', a, out));
  expect([first.code, first.stderr]).toEqual([0, expect.stringMatching(/wrote .*4 sequences/)]);
  const meta = readMeta(out);
  expect(meta.teacher).toBe(path.resolve(a));
  expect(meta.teacherFingerprint.files).toEqual([{ name: 'model.safetensors', bytes: fs.statSync(path.join(a, 'model.safetensors')).size }]);
  expect(meta.teacherFingerprint.config).toMatch(/^[0-9a-f]{64}$/);
  expect(meta.model).toMatchObject({ file: path.resolve('gemma2.model'), variant: null, hparams: {} });

  // finished folder: used to say "already done"
  let r = lapidary(args('gemma2.model', b, out));
  expectCleanFailure(r);
  expect(r.stderr).toContain(`made with --checkpoint '${path.resolve(a)}', now --checkpoint '${path.resolve(b)}'`);
  expect(r.stderr).not.toMatch(/already done/);
  expect(readMeta(out)).toEqual(meta);

  // partial folder: used to compute the missing shard with teacher B and relabel the folder
  fs.rmSync(path.join(out, 'targets-00001.safetensors'));
  r = lapidary(args('gemma2.model', b, out));
  expectCleanFailure(r);
  expect(r.stderr).toMatch(/--checkpoint .*teacher-a', now --checkpoint .*teacher-b'/);
  expect(fs.existsSync(path.join(out, 'targets-00001.safetensors'))).toBe(false);
  expect(readMeta(out)).toEqual(meta);

  // the same teacher resumes
  r = lapidary(args('gemma2.model', a, out));
  expect(r.code).toBe(0);
  expect(r.stderr).toMatch(/\(2 already done\)/);
  expect(r.stderr).not.toMatch(/warning/);
});

test("the teacher's files changed at the same path (config.json content, safetensors size): refused", () => {
  const a = copyTeacher('teacher-changing');
  const out = path.join(tmp, 'targets-changed');
  expect(lapidary(args('gemma2.model', a, out)).code).toBe(0);
  const cfg = path.join(a, 'config.json');
  fs.writeFileSync(cfg, JSON.stringify({ ...JSON.parse(fs.readFileSync(cfg, 'utf8')), _note: 'retrained' }));
  let r = lapidary(args('gemma2.model', a, out));
  expectCleanFailure(r);
  expect(r.stderr).toMatch(/the teacher --checkpoint '.*teacher-changing' is not the one these targets were made with: its config\.json was sha256 [0-9a-f]{12}…, now sha256 [0-9a-f]{12}…/);
  fs.copyFileSync(path.join(TINY, 'config.json'), cfg);
  fs.appendFileSync(path.join(a, 'model.safetensors'), Buffer.alloc(8));
  r = lapidary(args('gemma2.model', a, out));
  expectCleanFailure(r);
  expect(r.stderr).toMatch(/its safetensors were model\.safetensors \(\d+ bytes\), now model\.safetensors \(\d+ bytes\)/);
});

test('another model file (or the same file edited) is refused, naming both', () => {
  const a = copyTeacher('teacher-model');
  const model = path.join(tmp, 'teacher.model');
  fs.copyFileSync('gemma2.model', model);
  const out = path.join(tmp, 'targets-model');
  expect(lapidary(args(model, a, out)).code).toBe(0);
  const other = path.join(tmp, 'other.model');
  fs.writeFileSync(other, fs.readFileSync('gemma2.model', 'utf8') + '\n# another model\n');
  let r = lapidary(args(other, a, out));
  expectCleanFailure(r);
  expect(r.stderr).toContain(`made with the model file '${model}' (sha256 `);
  expect(r.stderr).toContain(`now '${other}' (sha256 `);
  fs.appendFileSync(model, '\n# edited\n');
  r = lapidary(args(model, a, out));
  expectCleanFailure(r);
  expect(r.stderr).toMatch(/the model file '.*teacher\.model' changed since these targets were made \(sha256 [0-9a-f]{12}…, now sha256 [0-9a-f]{12}…\)/);
});

test('the same teacher at another path (a symlinked checkpoint folder, a copy of the model file) resumes with one note', () => {
  const a = copyTeacher('teacher-moved');
  const model = path.join(tmp, 'moved.model');
  fs.copyFileSync('gemma2.model', model);
  const out = path.join(tmp, 'targets-moved');
  expect(lapidary(args(model, a, out)).code).toBe(0);
  fs.rmSync(path.join(out, 'targets-00001.safetensors'));
  const link = path.join(tmp, 'teacher-link');
  fs.symlinkSync(a, link, 'dir');
  const copy = path.join(tmp, 'moved-copy.model');
  fs.copyFileSync(model, copy);
  const before = readMeta(out);
  let r = lapidary(args(copy, link, out));
  expect([r.code, r.stderr]).toEqual([0, expect.stringMatching(/\(2 already done\)/)]);
  const notes = r.stderr.split('\n').filter((l) => /^lapidary: note:/.test(l));
  expect(notes).toHaveLength(1);
  expect(notes[0]).toContain(`--checkpoint '${path.resolve(a)}' → '${path.resolve(link)}'`);
  expect(notes[0]).toContain(`the model file '${path.resolve(model)}' → '${path.resolve(copy)}'`);
  expect(notes[0]).toMatch(/same fingerprint.*now records the new path/);
  expect(r.stderr).not.toMatch(/warning/);
  expect(fs.existsSync(path.join(out, 'targets-00001.safetensors'))).toBe(true);
  // targets.json records the new paths, the fingerprints unchanged; the same command again says nothing more
  const after = readMeta(out);
  expect(after).toEqual({ ...before, teacher: path.resolve(link), model: { ...before.model, file: path.resolve(copy) } });
  r = lapidary(args(copy, link, out));
  expect(r.code).toBe(0);
  expect(r.stderr).not.toMatch(/note|warning/);
  // another path whose content differs is still refused
  fs.appendFileSync(copy, '\n# edited\n');
  r = lapidary(args(copy, link, out));
  expectCleanFailure(r);
  expect(r.stderr).toMatch(/the model file '.*moved-copy\.model' changed since these targets were made/);
});

test('an older targets.json without the new fields resumes with a warning (the teacher path it records is still checked)', () => {
  const a = copyTeacher('teacher-old');
  const out = path.join(tmp, 'targets-old');
  expect(lapidary(args('gemma2.model', a, out)).code).toBe(0);
  const { teacherFingerprint: _f, model: _m, ...old } = readMeta(out);
  fs.writeFileSync(path.join(out, 'targets.json'), JSON.stringify(old, null, 2));
  fs.rmSync(path.join(out, 'targets-00001.safetensors'));
  const r = lapidary(args('gemma2.model', a, out));
  expect(r.code).toBe(0);
  expect(r.stderr).toMatch(/lapidary: warning: .*targets\.json does not record the teacher checkpoint's fingerprint or the model file \(written by an older lapidary\)/);
  expect(fs.existsSync(path.join(out, 'targets-00001.safetensors'))).toBe(true);
  // still unknown: not stamped with this run's teacher
  expect(readMeta(out).teacherFingerprint).toBeUndefined();
  expect(readMeta(out).model).toBeUndefined();
  const b = copyTeacher('teacher-old-b');
  const other = lapidary(args('gemma2.model', b, out));
  expectCleanFailure(other);
  expect(other.stderr).toMatch(/--checkpoint .*teacher-old', now --checkpoint .*teacher-old-b'/);
});

test('train --temperature other than the targets\' is warned (distillation uses one τ for both)', () => {
  const out = path.join(tmp, 'targets-tau');
  expect(lapidary(args('gemma2.model', TINY, out)).code).toBe(0);
  const student = (extra: string[]) =>
    lapidary(['train', 'gemma2.model', '--config', path.join(TINY, 'config.json'), '--data', data, '--targets', out, '--batch', '2', '--seq', '16', '--steps', '1', '--out', path.join(tmp, `student-${extra.join('')}`), ...extra]);
  const warned = student(['--temperature', '2']);
  expect(warned.code).toBe(0);
  expect(warned.stderr).toMatch(/warning: --targets were made at temperature 1, and --temperature 2 divides the student's logits/);
  expect(student([]).stderr).not.toMatch(/were made at temperature/);
});
