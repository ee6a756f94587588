/**
 * Errors in the compile options (`hparams`, `variant`, `dims`; on the command line --hparam, --variant,
 * --batch/--seq) are the option's, not the model file's: they carry `option` and `key` and no location,
 * rather than a caret under an unrelated line of the file. Errors where the file's text is the point (a
 * --seq above the file's `seq <= max_pos` bound, a config.json value read through a mapping line) keep it.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { compileModel, formatDiagnostic, formatDiagnostics, isOptionDiagnostic, Diagnostic, CompileOptions } from '../../grammar';
import { lapidary, expectCleanFailure } from '../cli/helpers';
import { GEMMA2, build } from './helpers';

const diags = (opts: CompileOptions, src = GEMMA2): Diagnostic[] => {
  const r = compileModel(src, 'gemma2.model', opts);
  expect(r.graph).toBeUndefined();
  return r.diagnostics;
};

const expectNoLocation = (d: Diagnostic) => {
  expect(isOptionDiagnostic(d)).toBe(true);
  for (const k of ['file', 'line', 'col', 'length', 'lineText'] as const) expect(d[k]).toBeUndefined();
};

describe('library: option diagnostics have the option, not a location', () => {
  test('an unknown hyperparameter override', () => {
    const ds = diags({ variant: '2b', hparams: { n_layerz: 2 } });
    expect(ds).toHaveLength(1);
    expect(ds[0]).toMatchObject({ severity: 'error', code: 'unknown-hparam', option: 'hparams', key: 'n_layerz', message: "unknown hyperparameter 'n_layerz' (did you mean 'n_layers'?)" });
    expectNoLocation(ds[0]);
    expect(formatDiagnostic(ds[0])).toBe("error: option hparams: unknown hyperparameter 'n_layerz' (did you mean 'n_layers'?)");
    expect(formatDiagnostic(ds[0], { optionName: () => '--hparam', origin: 'tool' })).toBe("tool: error: option --hparam: unknown hyperparameter 'n_layerz' (did you mean 'n_layers'?)");
  });

  test('an override of the wrong kind', () => {
    const ds = diags({ hparams: { vocab: 'abc' } });
    expect(ds).toHaveLength(1);
    expect(ds[0]).toMatchObject({ code: 'type', option: 'hparams', key: 'vocab', message: 'hyperparameter \'vocab\' takes a number (256000 by default), not the string "abc"' });
    expectNoLocation(ds[0]);
    const src = 'hparams { d = 4; dt = bf16 }\ndim n\nforward(x: f32[n, d]) { return y = cast(x, dt) }\n';
    expect(build(src, 'm.model', { hparams: { dt: 'f16' } }).hparams.dt).toBe('f16');
    const [d] = compileModel(src, 'm.model', { hparams: { dt: 'f8' } }).diagnostics;
    expect(d).toMatchObject({ option: 'hparams', key: 'dt', message: "hyperparameter 'dt' takes a dtype (bf16 by default; one of f32, bf16, f16, i32, i64, bool), not the string \"f8\"" });
  });

  test('an unknown variant', () => {
    const [d, ...rest] = diags({ variant: '3b' });
    expect(rest).toEqual([]);
    expect(d).toMatchObject({ code: 'unknown-variant', option: 'variant', key: '3b' });
    expect(d.message).toMatch(/^unknown variant '3b' .*'2b', '9b', '27b'/);
    expectNoLocation(d);
  });

  test('an unknown dim, and a dim bound to a non-integer', () => {
    const [d] = diags({ dims: { sq: 2 } });
    expect(d).toMatchObject({ code: 'unknown-dim', option: 'dims', key: 'sq', message: "unknown dim 'sq' (did you mean 'seq'?); the model declares 'batch', 'seq'" });
    expectNoLocation(d);
    const [e] = diags({ dims: { batch: 1.5 } });
    expect(e).toMatchObject({ option: 'dims', key: 'batch', message: "dim 'batch' must be bound to a positive integer, got 1.5" });
    expectNoLocation(e);
  });

  test('option errors come first, then the file errors, each kind printed its own way', () => {
    const src = GEMMA2.replace('query_scalar = d_model / n_heads', 'query_scalar = d_modle / n_heads');
    const ds = diags({ variant: '2b', hparams: { foo: 1, bar: 2 } }, src);
    expect(ds.map((d) => [d.option, d.key, d.line === undefined])).toEqual([
      ['hparams', 'foo', true],
      ['hparams', 'bar', true],
      [undefined, undefined, false],
    ]);
    const text = formatDiagnostics(ds).split('\n');
    expect(text.slice(0, 3)).toEqual(["error: option hparams: unknown hyperparameter 'foo'", "error: option hparams: unknown hyperparameter 'bar'", expect.stringMatching(/^gemma2\.model:\d+:\d+: error: unknown hyperparameter 'd_modle'/)]);
  });

  test('where the file is the point, the location stays: a dim above its bound, a bad config.json value', () => {
    const [d] = diags({ variant: '2b', dims: { seq: 9000 } });
    expect(d).toMatchObject({ code: 'unknown-dim', file: 'gemma2.model', lineText: expect.stringMatching(/^dim batch, seq <= max_pos/) });
    expect(d.option).toBeUndefined();
    const [c] = diags({ config: { hidden_size: 'big' } });
    expect(c).toMatchObject({ code: 'config', file: 'gemma2.model', lineText: expect.stringMatching(/hidden_size\s+-> d_model/) });
  });
});

describe('CLI: an option error is one clean line naming the option', () => {
  let tmp: string;
  beforeAll(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lapidary-opterr-'));
  });
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  test.each([
    [['--hparam', 'n_layerz=2'], "lapidary: error: option --hparam: unknown hyperparameter 'n_layerz' (did you mean 'n_layers'?)\n"],
    [['--variant', '3b'], "lapidary: error: option --variant: unknown variant '3b' (did you mean '2b'?); the variants are '2b', '9b', '27b'\n"],
    [['--hparam', 'vocab=abc'], 'lapidary: error: option --hparam: hyperparameter \'vocab\' takes a number (256000 by default), not the string "abc"\n'],
    [['--hparam', 'foo=1', '--hparam', 'bar=2'], "lapidary: error: option --hparam: unknown hyperparameter 'foo'\nlapidary: error: option --hparam: unknown hyperparameter 'bar'\n"],
  ])('stats gemma2.model %j', (args, stderr) => {
    const r = lapidary(['stats', 'gemma2.model', ...args]);
    expectCleanFailure(r);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(stderr);
  });

  test('check (every variant): an option error is reported once, without a variant', () => {
    const r = lapidary(['check', 'gemma2.model', '--hparam', 'n_layers=two']);
    expectCleanFailure(r);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('lapidary: error: option --hparam: hyperparameter \'n_layers\' takes a number (26 by default), not the string "two"\n');
  });

  test('--batch / --seq naming a dim the model does not declare', () => {
    const f = path.join(tmp, 'n.model');
    fs.writeFileSync(f, 'model m\nhparams { d = 4 }\ndim n\nforward(x: f32[n, d]) { return y = x }\n');
    let r = lapidary(['stats', f, '--seq', '4']);
    expectCleanFailure(r);
    expect(r.stderr).toBe("lapidary: error: option --seq: unknown dim 'seq'; the model declares 'n'\n");
    r = lapidary(['check', f, '--batch', '2']);
    expectCleanFailure(r);
    expect(r.stderr).toBe("lapidary: error: option --batch: unknown dim 'batch'; the model declares 'n'\n");
  });

  test('an option error next to errors of the file: both, the file ones with their location', () => {
    const f = path.join(tmp, 'b.model');
    fs.writeFileSync(f, 'model m\nhparams { d = 4 }\ndim n\nforward(x: f32[n, d]) { return y = x + q }\n');
    const r = lapidary(['stats', f, '--hparam', 'dd=3']);
    expectCleanFailure(r);
    expect(r.stderr.split('\n')[0]).toBe("lapidary: error: option --hparam: unknown hyperparameter 'dd' (did you mean 'd'?)");
    expect(r.stderr).toMatch(/b\.model:4:40: error: unknown name 'q'/);
    expect(r.stderr).toMatch(/\n2 errors\n$/);
  });

  test('--seq above the bound keeps pointing at the bound', () => {
    const r = lapidary(['stats', 'gemma2.model', '--variant', '2b', '--seq', '9000']);
    expectCleanFailure(r);
    expect(r.stderr).toMatch(/^gemma2\.model:\d+:19: error: dim 'seq' = 9000 is above its bound/);
    expect(r.stderr).toContain('^~~~~~~\n');
  });
});
