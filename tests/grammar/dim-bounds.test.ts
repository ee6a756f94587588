/**
 * `dim seq <= max_pos`: a model file bounds a dim by a hyperparameter expression, and every place that gives the
 * dim a size checks it — elaboration (--seq), the CPU executor (input shapes), specialisation (training),
 * generation (prompt + new tokens) and the TPU decode plan (--context).
 */
import * as path from 'path';
import { compileModel } from '../../grammar';
import { execute, initCpuBackend, tf } from '../../src/backends/cpu';
import { generate } from '../../src/backends/cpu/generate';
import { specializeDims } from '../../src/train/dims';
import { initParams } from '../../src/train/ckpt';
import { runPipeline, resolvePipeline } from '../../src/passes';
import { decodeStep } from '../../src/backends/tpu/decode';
import { evaluateOn, getChip, makeMesh, parseStrategy, parseTopology } from '../../src/backends/tpu';
import { GEMMA2, build, errors, read } from './helpers';
import { expectCleanFailure, lapidary } from '../cli/helpers';

const SMALL = `model small
hparams { vocab = 16; d = 8; max_pos = 6 }
dim batch, seq <= max_pos
forward(input_ids: i32[batch, seq]) {
  emb = param emb[vocab, d]
  return logits = linear(gather(emb, input_ids), emb)
}
`;

beforeAll(async () => {
  await initCpuBackend('cpu');
});

describe('dim bounds in the language', () => {
  test('a size above the bound is an error at the bound, naming the hyperparameter to override', () => {
    const ds = errors(SMALL, 'small.model', { dims: { seq: 7 } });
    expect(ds[0]).toMatchObject({ file: 'small.model', line: 3, col: 19 });
    expect(ds[0].message).toBe("dim 'seq' = 7 is above its bound: the model declares seq <= 6; if the model can take more, override 'max_pos' (e.g. --hparam max_pos=7)");
    expect(build(SMALL, 'small.model', { dims: { seq: 6 } }).dimBounds).toEqual({ seq: 6 });
    expect(build(SMALL, 'small.model', { dims: { seq: 7 }, hparams: { max_pos: 8 } }).dimBounds).toEqual({ seq: 8 });
  });

  test('the bound is evaluated per variant and config, and a config-set bound gets a note', () => {
    const config = JSON.parse(read('tests/fixtures/gemma2-tiny/config.json'));
    const ds = errors(GEMMA2, 'gemma2.model', { config, dims: { seq: 129 } });
    expect(ds[0].message).toMatch(/seq <= 128/);
    expect(ds[0].notes?.map((n) => n.message)).toEqual(["'max_pos' is 128, from config key 'max_position_embeddings'"]);
    expect(build(GEMMA2, 'gemma2.model', { variant: '27b', dims: { seq: 8192 } }).dimBounds).toEqual({ seq: 8192 });
  });

  test('a bound that is not a positive integer, or names an unknown hyperparameter, is an error', () => {
    expect(errors(SMALL.replace('max_pos = 6', 'max_pos = 2.5'))[0].message).toBe("the bound of dim 'seq' must be a positive integer, got the number 2.5");
    expect(errors(SMALL.replace('seq <= max_pos', 'seq <= max_po'))[0].message).toMatch(/unknown name 'max_po' \(did you mean 'max_pos'\?\)/);
  });

  test('every model file in the repository bounds seq (GPT-2 by its position table)', () => {
    for (const [file, bound] of [['examples/gpt2.model', 1024], ['examples/llama2.model', 4096], ['examples/gemma1.model', 8192]] as const) {
      const r = compileModel(read(file), file, { dims: { seq: bound + 1 } });
      expect(r.graph).toBeUndefined();
      expect(r.diagnostics[0].message).toMatch(new RegExp(`seq <= ${bound}`));
    }
  });
});

describe('dim bounds where sizes arrive later', () => {
  const g = build(SMALL, 'small.model');
  let params: ReturnType<typeof initParams>;
  beforeAll(() => {
    params = initParams(g, 0);
  });

  test('the CPU executor refuses an input longer than the bound', () => {
    const ok = tf.tensor2d([[1, 2, 3, 4, 5, 6]], [1, 6], 'int32');
    const long = tf.tensor2d([[1, 2, 3, 4, 5, 6, 7]], [1, 7], 'int32');
    execute(g, { input_ids: ok }, params).outputs.logits.dispose();
    expect(() => execute(g, { input_ids: long }, params)).toThrow("input 'input_ids': dim 1 ('seq') is 7, above the model's bound seq <= 6");
    ok.dispose();
    long.dispose();
  });

  test('specialisation (training graphs) and generation check it too', () => {
    expect(() => specializeDims(g, { batch: 1, seq: 7 })).toThrow("dimension 'seq' = 7 is above the model's bound seq <= 6");
    expect(specializeDims(g, { batch: 1, seq: 6 }).dimBounds).toEqual({ seq: 6 });
    expect(() => generate(g, params, [1, 2, 3], { maxNewTokens: 4 })).toThrow('the prompt (3 tokens) + 4 new tokens = 7 positions, above the model\'s bound seq <= 6');
    expect(generate(g, params, [1, 2, 3], { maxNewTokens: 3 }).newIds).toHaveLength(3);
  });

  test('a TPU decode step and decode plan refuse a context above the bound', () => {
    const dec = runPipeline(build(GEMMA2, 'gemma2.model', { variant: '2b', dims: { batch: 8, seq: 1 } }), resolvePipeline({})).graph;
    expect(() => decodeStep(dec, { context: 8193 })).toThrow('decode step: a context of 8193 positions is above the model\'s bound seq <= 8192');
    const mesh = makeMesh(parseTopology(getChip('v5e'), '2x4'), 'data=8');
    const plan = (context: number) => evaluateOn(dec, { chip: 'v5e', mode: 'decode', context }, { batch: 8, seq: 1 }, mesh, parseStrategy('fsdp', mesh));
    expect(plan(8192).fits).toBe(true);
    expect(() => plan(8193)).toThrow(/--context 8193 is above the model's bound seq <= 8192/);
  });
});

describe('dim bounds from the command line', () => {
  test('--seq and --context above the bound fail cleanly; --hparam (now on every model command) raises it', () => {
    const base = ['cost', 'gemma2.model', '--variant', '2b', '--chip', 'v5e', '--topology', '2x2', '--mesh', 'data=4', '--batch', '4'];
    const r1 = lapidary([...base, '--seq', '9000']);
    expectCleanFailure(r1);
    expect(r1.stderr).toMatch(/gemma2\.model:\d+:19: error: dim 'seq' = 9000 is above its bound/);
    const r2 = lapidary([...base, '--seq', '4096', '--mode', 'decode', '--context', '9000']);
    expectCleanFailure(r2);
    expect(r2.stderr).toMatch(/option --context 9000: the KV caches would hold more positions than the model's bound seq <= 8192/);
    const r3 = lapidary([...base, '--seq', '9000', '--hparam', 'max_pos=16384', '--json']);
    expect(r3.code).toBe(0);
    expect(JSON.parse(r3.stdout).fits).toBe(true);
    const r4 = lapidary(['stats', path.join('examples', 'gpt2.model'), '--hparam', 'n_layers=2', '--json']);
    expect(r4.code).toBe(0);
    expect(JSON.parse(r4.stdout).layers).toBe(2);
  });
});

test('when the bound comes from an override the user gave, the hint says to raise it (not to give it twice)', () => {
  const ds = errors(SMALL, 'small.model', { dims: { seq: 9 }, hparams: { max_pos: 8 } });
  expect(ds[0].message).toBe("dim 'seq' = 9 is above its bound: the model declares seq <= 8; if the model can take more, raise your override of 'max_pos' to 9 or more");
});

test("a bound whose hyperparameter also sizes a weight (GPT-2's n_ctx rows of wpe) is not suggested for raising", () => {
  const ds = errors(read('examples/gpt2.model'), 'examples/gpt2.model', { dims: { seq: 2000 } });
  expect(ds[0].message).toBe("dim 'seq' = 2000 is above its bound: the model declares seq <= 1024; 'n_ctx' also sizes a weight of the model, so a checkpoint fixes it: use at most 1024");
});
