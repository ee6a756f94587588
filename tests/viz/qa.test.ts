/** QA: viz's cost overlay stays within the model's declared dim bounds; --metric outside node-data is an error. */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { lapidary, expectCleanFailure } from '../cli/helpers';
import { COST_DEFAULTS, costEnv } from '../../src/cli/commands/viz';
import { loadModel } from '../../src/cli/load';

let tmp: string;
beforeAll(() => (tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lapidary-viz-qa-'))));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

test('default cost dims are capped by the model\'s bound (gpt2: seq <= n_ctx = 1024), not the 4096 default', () => {
  expect(COST_DEFAULTS.seq).toBe(4096);
  const gpt2 = loadModel('examples/gpt2.model', {});
  expect(gpt2.dimBounds?.seq).toBe(1024);
  expect(costEnv(gpt2)).toEqual({ batch: 1, seq: 1024 });
  // a larger bound leaves the default (gemma2: seq <= max_pos = 8192)
  expect(costEnv(loadModel('gemma2.model', { variant: '2b' }))).toEqual({ batch: 1, seq: 4096 });
  // a bound below it at a smaller --hparam
  expect(costEnv(loadModel('gemma2.model', { variant: '2b', hparam: { max_pos: 512 } }))).toEqual({ batch: 1, seq: 512 });
});

test('the gpt2 page says costs at seq=1024, a shape the model can run', () => {
  const out = path.join(tmp, 'gpt2.html');
  const r = lapidary(['viz', 'examples/gpt2.model', '--no-passes', '-o', out]);
  expect(r.code).toBe(0);
  const html = fs.readFileSync(out, 'utf8');
  expect(html).toContain('costs at batch=1, seq=1024');
  expect(html).not.toContain('seq=4096');
  // node-data values are at the same dims: equal to those of an explicit --seq 1024
  const nd = lapidary(['viz', 'examples/gpt2.model', '--format', 'node-data']);
  const bound = lapidary(['viz', 'examples/gpt2.model', '--format', 'node-data', '--batch', '1', '--seq', '1024']);
  expect(nd.code).toBe(0);
  expect(JSON.parse(nd.stdout).results).toEqual(JSON.parse(bound.stdout).results);
});

test('--metric with --format html or json is a clean error (it applies to node-data only); node-data takes it', () => {
  for (const extra of [['-o', path.join(tmp, 'm.html')], ['--format', 'json']]) {
    const r = lapidary(['viz', 'examples/gpt2.model', '--no-passes', '--metric', 'time', ...extra]);
    expectCleanFailure(r);
    expect(r.stderr).toMatch(/--metric time applies to --format node-data only; with --format (html|json) it does nothing/);
  }
  expect(fs.existsSync(path.join(tmp, 'm.html'))).toBe(false);
  const ok = lapidary(['viz', 'examples/gpt2.model', '--format', 'node-data', '--metric', 'time']);
  expect(ok.code).toBe(0);
  expect(Object.keys(JSON.parse(ok.stdout).results).length).toBeGreaterThan(0);
});

test('viz --checkpoint DIR takes the sizes from DIR/config.json unless --config names another, like run', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lapidary-viz-ckpt-'));
  try {
    const out = path.join(dir, 'g.json');
    const r = lapidary(['viz', 'gemma2.model', '--checkpoint', 'tests/fixtures/gemma2-tiny', '--format', 'json', '-o', out]);
    expect(r.code).toBe(0);
    const viaConfig = path.join(dir, 'c.json');
    expect(lapidary(['viz', 'gemma2.model', '--config', 'tests/fixtures/gemma2-tiny/config.json', '--format', 'json', '-o', viaConfig]).code).toBe(0);
    expect(fs.readFileSync(out, 'utf8')).toBe(fs.readFileSync(viaConfig, 'utf8'));
    // --config names another config, as in run and generate.
    const other = path.join(dir, 'other.json');
    fs.writeFileSync(other, JSON.stringify({ ...JSON.parse(fs.readFileSync('tests/fixtures/gemma2-tiny/config.json', 'utf8')), num_hidden_layers: 1 }));
    const both = lapidary(['viz', 'gemma2.model', '--checkpoint', 'tests/fixtures/gemma2-tiny', '--config', other, '--format', 'json', '-o', path.join(dir, 'x.json')]);
    expect(both.code).toBe(0);
    expect(fs.readFileSync(path.join(dir, 'x.json'), 'utf8')).not.toBe(fs.readFileSync(out, 'utf8'));
    const none = lapidary(['viz', 'gemma2.model', '--checkpoint', dir, '-o', path.join(dir, 'y.html')]);
    expectCleanFailure(none);
    expect(none.stderr).toMatch(/no config\.json there/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
