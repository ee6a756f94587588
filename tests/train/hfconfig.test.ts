/**
 * The model file's `config {}` mapping read backwards (`hfConfigFor`): for every variant of every model file in
 * the repository, the config.json it writes, compiled with no variant, gives back the variant's hyperparameters
 * (what `lapidary run --checkpoint` of a variant-trained checkpoint relies on); keys a base config already has
 * are updated in place; an hparam with no config key is reported, not silently dropped.
 */
import * as fs from 'fs';
import * as path from 'path';
import { compileModel, modelInfo } from '../../grammar';
import { hfConfigFor, hparamDiff } from '../../src/train/hfconfig';

const ROOT = path.join(__dirname, '../..');
const FILES = ['gemma2.model', 'examples/gemma1.model', 'examples/gpt2.model', 'examples/llama2.model'];

const cases = FILES.flatMap((f) => {
  const src = fs.readFileSync(path.join(ROOT, f), 'utf8');
  return modelInfo(src, f).variants.map((v) => [f, v] as const);
});

test.each(cases)('%s variant %s: config.json round trip', (file, variant) => {
  const src = fs.readFileSync(path.join(ROOT, file), 'utf8');
  const info = modelInfo(src, file);
  const g = compileModel(src, file, { variant }).graph!;
  const cfg = hfConfigFor(info.config, g.hparams, {}, info.configExpects);
  const back = compileModel(src, file, { config: cfg }).graph!;
  expect(hparamDiff(g.hparams, back.hparams)).toEqual([]);
  // and it is plain JSON with only mapped keys and the stated ones (model_type: a config.json written from a
  // variant alone says which architecture it is, so another model file refuses it)
  const top = new Set([...info.config.map((e) => e.key[0]), ...info.configExpects.map((e) => e.key[0])]);
  for (const k of Object.keys(cfg)) expect(top.has(k)).toBe(true);
  expect(cfg.model_type).toBe(info.configExpects[0].value);
});

test('null values, nested keys, and a base config updated where it has the key', () => {
  const src = fs.readFileSync(path.join(ROOT, 'gemma2.model'), 'utf8');
  const { config } = modelInfo(src, 'gemma2.model');
  const hp = compileModel(src, 'gemma2.model', { variant: '2b', hparams: { window: 0, final_cap: 0, n_layers: 3 } }).graph!.hparams;
  const fresh = hfConfigFor(config, hp);
  expect(fresh).toMatchObject({ sliding_window: null, final_logit_softcapping: null, attn_logit_softcapping: 50, num_hidden_layers: 3, rope_parameters: { rope_theta: 10000 } });
  // Both layouts of rope_theta: transformers 5 reads rope_parameters, 4.x the top-level key.
  expect(fresh.rope_theta).toBe(10000);
  // A base config (an older HF layout with a top-level rope_theta, extra keys) keeps its shape and its other keys.
  const base = { rope_theta: 5, num_hidden_layers: 26, model_type: 'gemma2', rope_parameters: { rope_type: 'default' } };
  const merged = hfConfigFor(config, hp, base);
  expect(merged).toMatchObject({ rope_theta: 10000, num_hidden_layers: 3, model_type: 'gemma2', rope_parameters: { rope_type: 'default' } });
  expect((merged.rope_parameters as Record<string, unknown>).rope_theta).toBeUndefined();
  expect(base.num_hidden_layers).toBe(26); // not mutated
});

test('an hparam no config key sets is reported by the round trip', () => {
  const src = `model m
hparams { d = 4; k = 2 }
variant "wide" { d = 8; k = 3 }
config { hidden -> d }
dim batch
forward(x: f32[batch, d]) { return y = x * k }
`;
  const { config } = modelInfo(src, 'm.model');
  const g = compileModel(src, 'm.model', { variant: 'wide' }).graph!;
  const cfg = hfConfigFor(config, g.hparams);
  expect(cfg).toEqual({ hidden: 8 });
  expect(hparamDiff(g.hparams, compileModel(src, 'm.model', { config: cfg }).graph!.hparams)).toEqual(['k']);
});
