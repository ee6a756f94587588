import * as fs from 'fs';
import * as path from 'path';
import { compileModel } from '../../grammar';
import { countOps } from '../../src/ir';

const ROOT = path.resolve(__dirname, '../..');
const source = fs.readFileSync(path.join(ROOT, 'gemma2.model'), 'utf8');
const tiny = JSON.parse(fs.readFileSync(path.join(ROOT, 'tests/fixtures/gemma2-tiny/config.json'), 'utf8'));

function ops(config: object) {
  const r = compileModel(source, 'gemma2.model', { config });
  expect(r.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
  return countOps(r.graph!);
}

describe('gemma2.model reads Hugging Face configs as transformers does', () => {
  test('caps and windows from the config: one tanh per layer plus the final soft-cap, band masks on sliding layers', () => {
    const c = ops(tiny);
    expect(c.tanh).toBe(tiny.num_hidden_layers + 1);
    expect(c.and).toBe(tiny.num_hidden_layers / 2);
  });

  test('null soft-caps and a null window switch them off (no tanh, no band mask)', () => {
    const c = ops({ ...tiny, attn_logit_softcapping: null, final_logit_softcapping: null, sliding_window: null });
    expect(c.tanh ?? 0).toBe(0);
    expect(c.and ?? 0).toBe(0);
  });

  test('a zero final cap drops only the final soft-cap', () => {
    const c = ops({ ...tiny, final_logit_softcapping: 0 });
    expect(c.tanh).toBe(tiny.num_hidden_layers);
  });
});
