/** Parameter counts of every variant against the published Hugging Face figures (FIGURES.md, the brief). */
import { countParams } from '../../src/ir/params';
import { GEMMA2, build, read } from './helpers';

describe('parameter counts', () => {
  const cases: [string, string, string, number, number | undefined][] = [
    ['gemma2.model', GEMMA2, '2b', 2_614_341_888, 589_824_000],
    ['gemma2.model', GEMMA2, '9b', 9_241_705_984, 917_504_000],
    ['gemma2.model', GEMMA2, '27b', 27_227_128_320, 1_179_648_000],
    ['examples/gemma1.model', read('examples/gemma1.model'), '7b', 8_537_680_896, 786_432_000],
    // Derived by hand from google/gemma-2b's config (18 layers, d 2048, MQA, d_ff 16384): HF reports 2.51B.
    ['examples/gemma1.model', read('examples/gemma1.model'), '2b', 2_506_172_416, 524_288_000],
    ['examples/llama2.model', read('examples/llama2.model'), '7b', 6_738_415_616, undefined],
    ['examples/llama2.model', read('examples/llama2.model'), '13b', 13_015_864_320, undefined],
    ['examples/llama2.model', read('examples/llama2.model'), '70b', 68_976_648_192, undefined],
    // GPT-2 family as Hugging Face counts it (num_parameters() of gpt2 … gpt2-xl; the LM head is tied):
    // a third architecture (learned positions, LayerNorm with bias, Conv1D [in, out] weights, fused QKV).
    ['examples/gpt2.model', read('examples/gpt2.model'), 'small', 124_439_808, 50_257 * 768 + 1024 * 768],
    ['examples/gpt2.model', read('examples/gpt2.model'), 'medium', 354_823_168, undefined],
    ['examples/gpt2.model', read('examples/gpt2.model'), 'large', 774_030_080, undefined],
    ['examples/gpt2.model', read('examples/gpt2.model'), 'xl', 1_557_611_200, undefined],
  ];
  test.each(cases)('%s variant %s', (file, source, variant, params, embedding) => {
    const g = build(source, file, { variant });
    const c = countParams(g);
    expect(c.params).toBe(params);
    if (embedding !== undefined) expect(c.embedding_params).toBe(embedding);
    expect(g.variant).toBe(variant);
  });

  test('without a variant the hparams defaults are used (gemma2 defaults are the 2B)', () => {
    const g = build(GEMMA2, 'gemma2.model');
    expect(countParams(g).params).toBe(2_614_341_888);
    expect(g.variant).toBeUndefined();
    expect(g.hparams.d_model).toBe(2304);
  });

  test('the 27B variant evaluates query_scalar = d_model / n_heads after overriding', () => {
    const g = build(GEMMA2, 'gemma2.model', { variant: '27b' });
    expect(g.hparams.query_scalar).toBe(144);
    expect(g.hparams.head_dim).toBe(128);
  });

  test('llama2 has an untied lm_head; gemma ties the head to the embedding', () => {
    const names = (g: ReturnType<typeof build>) => g.nodes.filter((n) => n.op === 'param').map((n) => String(n.attrs.name));
    expect(names(build(read('examples/llama2.model'), 'llama2.model', { variant: '7b' }))).toContain('lm_head.weight');
    expect(names(build(GEMMA2, 'gemma2.model')).some((n) => n.startsWith('lm_head'))).toBe(false);
  });

  test('gpt2 weights carry the GPT2LMHeadModel state-dict names in Conv1D layout [in, out]', () => {
    const g = build(read('examples/gpt2.model'), 'gpt2.model', { variant: 'small' });
    const shapes = Object.fromEntries(g.nodes.filter((n) => n.op === 'param').map((n) => [String(n.attrs.name), n.type.shape]));
    expect(shapes['transformer.wte.weight']).toEqual([50257, 768]);
    expect(shapes['transformer.wpe.weight']).toEqual([1024, 768]);
    expect(shapes['transformer.h.11.attn.c_attn.weight']).toEqual([768, 2304]);
    expect(shapes['transformer.h.0.mlp.c_proj.weight']).toEqual([3072, 768]);
    expect(shapes['transformer.ln_f.bias']).toEqual([768]);
    expect(Object.keys(shapes)).toHaveLength(2 + 12 * 12 + 2);
  });
});
