/** `lapidary run` and `lapidary generate` as a user runs them (the built CLI; npm test builds dist/ first). */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { lapidary, expectCleanFailure } from '../cli/helpers';

const TINY = 'tests/fixtures/gemma2-tiny';
const ref = JSON.parse(fs.readFileSync(path.join(__dirname, '../fixtures/gemma2-tiny/reference.json'), 'utf8'));
let tmp: string;
beforeAll(() => (tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lapidary-run-'))));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const maxErr = (got: number[], want: number[]) => {
  expect(got.length).toBe(want.length);
  return Math.max(...got.map((v, i) => Math.abs(v - want[i])));
};

test('run executes the default pass pipeline (fused_attention): logits match transformers within 1e-4; --timing is one JSON line', () => {
  const ids = path.join(tmp, 'ids.json');
  const out = path.join(tmp, 'out.json');
  fs.writeFileSync(ids, JSON.stringify(ref.input_ids));
  const r = lapidary(['run', 'gemma2.model', '--checkpoint', TINY, '--input-ids', ids, '--logits-out', out, '--timing', '--profile']);
  expect(r.code).toBe(0);
  expect(Object.keys(JSON.parse(r.stdout)).sort()).toEqual(['forward_ms', 'load_ms', 'tokens_per_s']);
  // the per-op profile shows what ran: fused attention, no mask select, no K/V broadcast
  expect(r.stderr).toMatch(/^fused_attention +4 /m);
  expect(r.stderr).not.toMatch(/^(select|broadcast|softmax) /m);
  expect(maxErr(JSON.parse(fs.readFileSync(out, 'utf8')).logits.flat(2), ref.logits.flat(2))).toBeLessThan(1e-4);
});

test("run --passes '' executes the graph as the front end wrote it (primitive attention), with the same logits", () => {
  const ids = path.join(tmp, 'ids2.json');
  const out = path.join(tmp, 'out2.json');
  fs.writeFileSync(ids, JSON.stringify(ref.input_ids));
  const r = lapidary(['run', 'gemma2.model', '--checkpoint', TINY, '--input-ids', ids, '--logits-out', out, '--passes', '', '--profile']);
  expect(r.code).toBe(0);
  expect(r.stderr).toMatch(/^select +4 /m);
  expect(r.stderr).not.toMatch(/^fused_attention /m);
  expect(maxErr(JSON.parse(fs.readFileSync(out, 'utf8')).logits.flat(2), ref.logits.flat(2))).toBeLessThan(1e-4);
});

test('generate: greedy reproduces the 12 reference tokens with the KV cache (default) and by recomputation (--no-cache); --json', () => {
  const args = ['generate', 'gemma2.model', '--checkpoint', TINY, '--prompt-ids', ref.generate.prompt[0].join(','), '--max-new-tokens', '12', '--json'];
  const cached = lapidary(args);
  expect(cached.code).toBe(0);
  expect(cached.stderr).toMatch(/^12 tokens, [\d.]+ tokens\/s \(KV cache\)$/m);
  expect(JSON.parse(cached.stdout).ids).toEqual(ref.generate.hf_generate[0]);
  const full = lapidary([...args, '--no-cache']);
  expect(full.code).toBe(0);
  expect(full.stderr).toMatch(/\(full recomputation\)/);
  expect(JSON.parse(full.stdout).ids).toEqual(ref.generate.hf_generate[0]);
});

test('generate: sampling is reproducible by seed', () => {
  const args = ['generate', 'gemma2.model', '--checkpoint', TINY, '--prompt-ids', '500,122', '--max-new-tokens', '6', '--temperature', '1.5', '--top-k', '50', '--top-p', '0.95', '--json'];
  const a = JSON.parse(lapidary([...args, '--seed', '7']).stdout).ids;
  expect(JSON.parse(lapidary([...args, '--seed', '7']).stdout).ids).toEqual(a);
  expect(a).toHaveLength(8);
});

test('bad input: clear messages, exit 1, no stack trace, the output file left alone', () => {
  const out = path.join(tmp, 'keep.json');
  fs.writeFileSync(out, 'precious');
  const bad = path.join(tmp, 'bad.json');
  fs.writeFileSync(bad, '[[1, 2], [3]]');
  let r = lapidary(['run', 'gemma2.model', '--checkpoint', TINY, '--input-ids', bad, '--logits-out', out]);
  expectCleanFailure(r);
  expect(r.stderr).toMatch(/bad\.json: row 1 has 1 ids but row 0 has 2/);
  expect(fs.readFileSync(out, 'utf8')).toBe('precious');
  fs.writeFileSync(bad, '[[1, 512]]');
  r = lapidary(['run', 'gemma2.model', '--checkpoint', TINY, '--input-ids', bad]);
  expectCleanFailure(r);
  expect(r.stderr).toMatch(/row 0, position 1: id 512 is outside the vocabulary \(size 512\)/);
  r = lapidary(['run', 'gemma2.model', '--checkpoint', path.join(tmp, 'missing'), '--input-ids', bad]);
  expectCleanFailure(r);
  expect(r.stderr).toMatch(/checkpoint '.*missing' does not exist/);
  r = lapidary(['generate', 'gemma2.model', '--checkpoint', TINY, '--prompt', 'hi', '--max-new-tokens', '2']);
  expectCleanFailure(r);
  expect(r.stderr).toMatch(/--prompt needs a tokenizer/);
  r = lapidary(['generate', 'gemma2.model', '--checkpoint', TINY, '--prompt-ids', '1,2', '--max-new-tokens', '0']);
  expectCleanFailure(r);
  expect(r.stderr).toMatch(/--max-new-tokens takes a positive integer, got '0'/);
  r = lapidary(['generate', 'gemma2.model', '--checkpoint', TINY, '--prompt-ids', '1,2', '--max-new-tokens', '1', '--no-pass', 'softcap_folding']);
  expectCleanFailure(r);
  expect(r.stderr).toMatch(/--no-pass: unknown pass 'softcap_folding' \(did you mean 'softcap-folding'\?\)/);
});

test('--logits-out into a missing folder or onto a folder: a clean error before the forward, no temp file left', () => {
  const ids = path.join(tmp, 'ids-out.json');
  fs.writeFileSync(ids, '[[2, 3]]');
  const dir = path.join(tmp, 'outdir');
  fs.mkdirSync(dir);
  let r = lapidary(['run', 'gemma2.model', '--checkpoint', TINY, '--input-ids', ids, '--logits-out', path.join(tmp, 'missing-dir', 'o.json')]);
  expectCleanFailure(r);
  expect(r.stderr).toMatch(/--logits-out '.*o\.json': the directory '.*missing-dir' does not exist/);
  r = lapidary(['run', 'gemma2.model', '--checkpoint', TINY, '--input-ids', ids, '--logits-out', dir]);
  expectCleanFailure(r);
  expect(r.stderr).toMatch(/--logits-out '.*outdir' is a directory/);
  expect(fs.readdirSync(tmp).filter((f) => f.endsWith('.tmp'))).toEqual([]);
});

test('generate: counts and seeds are digits in range (1e1 was 10 tokens, seed 1e30 sampled as seed 0); an empty prompt is named', () => {
  const base = ['generate', 'gemma2.model', '--checkpoint', TINY, '--prompt-ids', '1,2'];
  for (const [extra, msg] of [
    [['--max-new-tokens', '1e1'], /option --max-new-tokens takes a positive integer, got '1e1'/],
    [['--max-new-tokens', '99999999999999999999'], /option --max-new-tokens takes a positive integer/],
    [['--max-new-tokens', '2', '--temperature', '1', '--top-k', '0x10'], /option --top-k takes a positive integer, got '0x10'/],
    [['--max-new-tokens', '2', '--temperature', '1', '--seed', '1e30'], /option --seed takes a 32-bit integer .*got '1e30'/],
    [['--max-new-tokens', '2', '--temperature', '1', '--seed', '4294967296'], /option --seed takes a 32-bit integer/],
  ] as const) {
    const r = lapidary([...base, ...extra]);
    expectCleanFailure(r);
    expect(r.stderr).toMatch(msg);
  }
  const r = lapidary(['generate', 'gemma2.model', '--checkpoint', TINY, '--prompt-ids', '', '--max-new-tokens', '1']);
  expectCleanFailure(r);
  expect(r.stderr).toMatch(/--prompt-ids is empty/);
});

test("a config.json whose layer_types disagree with the model file's sliding/global pattern is refused, not run with the wrong masks", () => {
  const ids = path.join(tmp, 'ids-lt.json');
  fs.writeFileSync(ids, JSON.stringify(ref.input_ids));
  const cfg = JSON.parse(fs.readFileSync(path.join(TINY, 'config.json'), 'utf8'));
  const swapped = path.join(tmp, 'config-swapped.json');
  fs.writeFileSync(swapped, JSON.stringify({ ...cfg, layer_types: cfg.layer_types.map((t: string) => (t === 'full_attention' ? 'sliding_attention' : 'full_attention')) }));
  const r = lapidary(['run', 'gemma2.model', '--checkpoint', TINY, '--config', swapped, '--input-ids', ids]);
  expectCleanFailure(r);
  expect(r.stderr).toMatch(/config-swapped\.json and gemma2\.model disagree on which layers use a sliding window[^]*layer 0: config\.json layer_types says full_attention, the model file gives it a sliding window of 4/);
  expect(r.stderr).toMatch(/layer 1: config\.json layer_types says sliding_attention, the model file gives it global attention/);
  // The checkpoint's own config (alternating, sliding first) agrees: run succeeds (the first test). generate checks too.
  // Whatever pipeline runs: the primitive graph, or one without the sliding-window pass, is checked the same way.
  for (const extra of [['--passes', ''], ['--no-pass', 'sliding-window']]) {
    const rp = lapidary(['run', 'gemma2.model', '--checkpoint', TINY, '--config', swapped, '--input-ids', ids, ...extra]);
    expectCleanFailure(rp);
    expect(rp.stderr).toMatch(/layer 0: [^]*layer 1: [^]*layer 2: [^]*layer 3: /);
    const ok = lapidary(['run', 'gemma2.model', '--checkpoint', TINY, '--input-ids', ids, ...extra]);
    expect([extra.join(' '), ok.code, ok.stderr]).toEqual([extra.join(' '), 0, '']);
  }
  const g = lapidary(['generate', 'gemma2.model', '--checkpoint', TINY, '--config', swapped, '--prompt-ids', '2,10', '--max-new-tokens', '1']);
  expectCleanFailure(g);
  expect(g.stderr).toMatch(/disagree on which layers use a sliding window/);
});

test('generate --prompt with a tokenizer.json of another vocabulary: a clean error naming the id, not an internal error', () => {
  const dir = path.join(tmp, 'tok-ck');
  fs.mkdirSync(dir);
  for (const f of ['config.json', 'model.safetensors']) fs.copyFileSync(path.join(TINY, f), path.join(dir, f));
  const tj = JSON.parse(fs.readFileSync(path.join(__dirname, '../fixtures/word-tokenizer/tokenizer.json'), 'utf8'));
  tj.model.vocab.huge = 1000;
  fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(tj));
  const r = lapidary(['generate', 'gemma2.model', '--checkpoint', dir, '--prompt', 'the huge cat', '--max-new-tokens', '2']);
  expectCleanFailure(r);
  expect(r.stderr).toMatch(/--prompt: tokenizer\.json gives id 1000 .*the model's vocabulary has 512 ids/);
  const ok = lapidary(['generate', 'gemma2.model', '--checkpoint', dir, '--prompt', 'the cat', '--max-new-tokens', '2']);
  expect(ok.code).toBe(0);
  expect(ok.stdout).toMatch(/^the cat/); // the tiny model's new ids lie beyond this 7-word tokenizer: shown as <id N>
  expect(ok.stdout).toMatch(/<id \d+>/);
});

test("a --checkpoint that is config.json, and commander's own errors, read like every other error", () => {
  const ids = path.join(tmp, 'ids-ck.json');
  fs.writeFileSync(ids, '[[2, 3]]');
  const r = lapidary(['run', 'gemma2.model', '--checkpoint', path.join(TINY, 'config.json'), '--input-ids', ids]);
  expectCleanFailure(r);
  expect(r.stderr).toMatch(/^lapidary: error: checkpoint '.*config\.json' is a file but not a \.safetensors file: give the checkpoint folder/);
  const m = lapidary(['run', 'gemma2.model', '--input-ids', ids]);
  expect(m.code).toBe(1);
  expect(m.stderr).toMatch(/^lapidary: error: required option '--checkpoint <dir>' not specified/);
});

