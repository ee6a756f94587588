/**
 * `config { model_type = "gemma2" }`: what a config.json for this model file says. A checkpoint of another
 * architecture (its config.json names another model_type) is refused before any weight is read; it used to run
 * with the wrong model and print wrong tokens with exit 0.
 */
import * as path from 'path';
import { compileModel, modelInfo } from '../../grammar';
import { GEMMA2, errors, build, read } from './helpers';
import { expectCleanFailure, lapidary } from '../cli/helpers';

const TINY = JSON.parse(read('tests/fixtures/gemma2-tiny/config.json'));

test('a config.json with the model file\'s model_type (or none) is accepted; another one is an error at the entry', () => {
  expect(build(GEMMA2, 'gemma2.model', { config: TINY }).hparams.d_model).toBe(TINY.hidden_size);
  const { model_type: _drop, ...noType } = TINY;
  expect(build(GEMMA2, 'gemma2.model', { config: noType }).hparams.d_model).toBe(TINY.hidden_size);
  const ds = errors(GEMMA2, 'gemma2.model', { config: { ...TINY, model_type: 'llama' } });
  expect(ds[0].message).toBe('the config has model_type "llama", but this model file is for model_type "gemma2": the config (and a checkpoint it belongs to) is for another architecture; give the matching model file');
  expect(ds[0]).toMatchObject({ file: 'gemma2.model', line: GEMMA2.split('\n').findIndex((l) => l.includes('model_type = "gemma2"')) + 1, col: 3 });
});

test('every model file states its Hugging Face model_type; the value must be a constant', () => {
  for (const [file, type] of [['gemma2.model', 'gemma2'], ['examples/gemma1.model', 'gemma'], ['examples/llama2.model', 'llama'], ['examples/gpt2.model', 'gpt2']]) {
    expect(modelInfo(read(file), file).configExpects).toEqual([{ key: ['model_type'], value: type }]);
  }
  const src = `model m\nhparams { d = 4; t = "x" }\nconfig { model_type = t }\ndim n\nforward(x: f32[n, d]) { return y = x }\n`;
  const r = compileModel(src, 'm.model');
  expect(r.graph).toBeUndefined();
  expect(r.diagnostics[0].message).toBe("the value config key 'model_type' must have is a constant, not the name 't'");
});

test('a command given the config of another architecture fails cleanly, naming both model types', () => {
  const r = lapidary(['stats', path.join('examples', 'gemma1.model'), '--config', 'tests/fixtures/gemma2-tiny/config.json']);
  expectCleanFailure(r);
  expect(r.stderr).toMatch(/gemma1\.model:\d+:3: error: the config has model_type "gemma2", but this model file is for model_type "gemma"/);
});
