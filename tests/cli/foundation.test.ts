import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { lapidary, expectCleanFailure, ROOT } from './helpers';
import { fromJSON, verify, paramNodes } from '../../src/ir';

const stats = (args: string[]) => {
  const r = lapidary(['stats', ...args, '--json']);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout);
};

describe('lapidary stats: exact parameter counts (FIGURES.md, Hugging Face checkpoints)', () => {
  test.each([
    ['2b', 2_614_341_888, 589_824_000],
    ['9b', 9_241_705_984, 917_504_000],
    ['27b', 27_227_128_320, 1_179_648_000],
  ])('gemma2 %s', (variant, params, embedding) => {
    const s = stats(['gemma2.model', '--variant', variant]);
    expect(s.params).toBe(params);
    expect(s.embedding_params).toBe(embedding);
    expect(s.nodes).toBeGreaterThan(0);
  });

  test.each([
    ['examples/gemma1.model', '7b', 8_537_680_896],
    ['examples/llama2.model', '7b', 6_738_415_616],
    ['examples/llama2.model', '70b', 68_976_648_192],
  ])('%s %s', (file, variant, params) => {
    expect(stats([file, '--variant', variant]).params).toBe(params);
  });
});

describe('--config maps a Hugging Face config.json onto the hyperparameters', () => {
  const dir = path.join(ROOT, 'tests/fixtures/gemma2-tiny');

  function safetensorsHeader(file: string): Record<string, { shape: number[] }> {
    const buf = fs.readFileSync(file);
    const n = Number(buf.readBigUInt64LE(0));
    const h = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
    delete h.__metadata__;
    return h;
  }

  test('the IR has exactly the checkpoint tensor names and shapes', () => {
    const r = lapidary(['ir', 'gemma2.model', '--config', path.join(dir, 'config.json'), '--json']);
    expect(r.code).toBe(0);
    const g = fromJSON(JSON.parse(r.stdout));
    verify(g);
    const fromIr = Object.fromEntries(paramNodes(g).map((p) => [p.attrs.name as string, p.type.shape]));
    const header = safetensorsHeader(path.join(dir, 'model.safetensors'));
    const fromCkpt = Object.fromEntries(Object.entries(header).map(([k, v]) => [k, v.shape]));
    expect(fromIr).toEqual(fromCkpt);
  });
});

describe('user errors: clear message, location, exit 1, no stack trace', () => {
  let tmp: string;
  beforeAll(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lapidary-cli-'));
  });
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  test('a variant setting an unknown hyperparameter, with the near-miss name', () => {
    const src = fs.readFileSync(path.join(ROOT, 'gemma2.model'), 'utf8').replace('head_dim = 128;', 'head_dimm = 128;');
    const f = path.join(tmp, 'typo.model');
    fs.writeFileSync(f, src);
    const r = lapidary(['check', f]);
    expectCleanFailure(r);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/typo\.model:\d+:\d+: error: .*head_dimm.*did you mean 'head_dim'/);
    expect(r.stderr).toContain('^');
  });

  test('several syntax errors in one run', () => {
    const f = path.join(tmp, 'broken.model');
    fs.writeFileSync(f, 'model m\nhparams { a = 1 +  }\nhparams { b = * 2 }\n');
    const r = lapidary(['check', f]);
    expectCleanFailure(r);
    expect((r.stderr.match(/broken\.model:\d+:\d+: error:/g) ?? []).length).toBeGreaterThanOrEqual(2);
  });

  test('missing model file', () => {
    const r = lapidary(['stats', path.join(tmp, 'nope.model')]);
    expectCleanFailure(r);
    expect(r.stderr).toMatch(/cannot read model file .*nope\.model.*no such file/);
  });

  test('unknown variant lists the variants', () => {
    const r = lapidary(['stats', 'gemma2.model', '--variant', '72b']);
    expectCleanFailure(r);
    expect(r.stderr).toMatch(/72b/);
    expect(r.stderr).toMatch(/27b/);
  });

  test('config that is not JSON', () => {
    const f = path.join(tmp, 'bad.json');
    fs.writeFileSync(f, '{ "hidden_size": ');
    const r = lapidary(['stats', 'gemma2.model', '--config', f]);
    expectCleanFailure(r);
    expect(r.stderr).toMatch(/bad\.json.*not valid JSON/);
  });

  test('bad option value', () => {
    const r = lapidary(['ir', 'gemma2.model', '--seq', 'many']);
    expectCleanFailure(r);
    expect(r.stderr).toMatch(/--seq/);
  });

  test('check succeeds silently on a good file', () => {
    const r = lapidary(['check', 'gemma2.model']);
    expect(r).toEqual({ code: 0, stdout: '', stderr: '' });
  });
});
