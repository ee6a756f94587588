/**
 * The IR built with the tiny checkpoint's config.json has exactly the checkpoint's tensors: the same names
 * and shapes (read from the safetensors header: 8-byte little-endian length, then JSON).
 */
import * as fs from 'fs';
import * as path from 'path';
import { countParams } from '../../src/ir/params';
import { GEMMA2, build } from './helpers';

const DIR = path.join(__dirname, '..', 'fixtures', 'gemma2-tiny');

function safetensorsHeader(file: string): Record<string, { dtype: string; shape: number[] }> {
  const buf = fs.readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const json = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<string, { dtype: string; shape: number[] }>;
  delete json.__metadata__;
  return json;
}

describe('gemma2-tiny checkpoint', () => {
  const config = JSON.parse(fs.readFileSync(path.join(DIR, 'config.json'), 'utf8'));
  const header = safetensorsHeader(path.join(DIR, 'model.safetensors'));

  test('param names and shapes equal the checkpoint tensors', () => {
    const g = build(GEMMA2, 'gemma2.model', { config });
    const ir = Object.fromEntries(g.nodes.filter((n) => n.op === 'param').map((n) => [String(n.attrs.name), [...n.type.shape]]));
    const ckpt = Object.fromEntries(Object.entries(header).map(([k, v]) => [k, v.shape]));
    expect(ir).toEqual(ckpt);
    expect(Object.keys(ir)).toHaveLength(46);
  });

  test('config values reach the hyperparameters (nested keys, first present key wins)', () => {
    const g = build(GEMMA2, 'gemma2.model', { config });
    expect(g.hparams).toMatchObject({
      vocab: 512,
      d_model: 64,
      n_layers: 4,
      d_ff: 128,
      n_heads: 4,
      n_kv_heads: 2,
      head_dim: 16,
      query_scalar: 16,
      window: 4,
      attn_cap: 10,
      final_cap: 5,
      rope_theta: 10000,
      max_pos: 128,
    });
    const total = Object.values(header).reduce((s, t) => s + t.shape.reduce((a, b) => a * b, 1), 0);
    expect(countParams(g).params).toBe(total);
  });

  test('a config with a variant: the config wins over the variant', () => {
    const g = build(GEMMA2, 'gemma2.model', { variant: '27b', config });
    expect(g.hparams.d_model).toBe(64);
    expect(g.hparams.head_dim).toBe(16);
  });

  test('bound dims make every shape concrete', () => {
    const g = build(GEMMA2, 'gemma2.model', { config, dims: { batch: 2, seq: 12 } });
    expect(g.dims).toEqual([]);
    for (const n of g.nodes) for (const d of n.type.shape) expect(typeof d).toBe('number');
    const logits = g.nodes.find((n) => n.id === g.outputs[0].node)!;
    expect(logits.type.shape).toEqual([2, 12, 512]);
  });
});
