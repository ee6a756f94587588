/** The `config {}` mapping as users meet it with Hugging Face configs that are not the repository's. */
import { compileModel } from '../../grammar';
import { build, errors, GEMMA2 } from './helpers';

const SRC = `hparams { d = 8; window = 4096; cap = 30.0 }
config {
  hidden_size -> d
  sliding_window -> window (null = 0)        # Mistral-style configs: null = no sliding window
  final_logit_softcapping -> cap (null = 0.0)
}
dim seq
forward(x: f32[seq, d]) {
  y = if cap > 0 then softcap(x, cap) else x
  return y = y * float(window)
}
`;

test('(null = v) says what a JSON null means; without it null counts as absent', () => {
  expect(build(SRC, 'n.model', { config: { sliding_window: null, final_logit_softcapping: null } }).hparams).toEqual({ d: 8, window: 0, cap: 0 });
  expect(build(SRC, 'n.model', { config: { sliding_window: 128 } }).hparams).toEqual({ d: 8, window: 128, cap: 30 });
  expect(build(SRC, 'n.model', { config: {} }).hparams).toEqual({ d: 8, window: 4096, cap: 30 });
  // no (null = ...): a null is skipped, the default stays
  expect(build(SRC, 'n.model', { config: { hidden_size: null } }).hparams.d).toBe(8);
  // the graph follows: no soft-cap node when the config says null
  const ops = build(SRC, 'n.model', { config: { final_logit_softcapping: null } }).nodes.map((n) => n.op);
  expect(ops).not.toContain('tanh');
});

test('(null = v) must spell null and hold a constant', () => {
  let ds = errors(SRC.replace('(null = 0)', '(nul = 0)'), 'n.model');
  expect(ds.map((d) => [d.code, d.line, d.col, d.message])).toEqual([['syntax', 4, 29, "expected 'null', as in `sliding_window -> window (null = 0)`"]]);
  ds = errors(SRC.replace('(null = 0)', '(null = d)'), 'n.model');
  expect(ds.map((d) => [d.code, d.line, d.message])).toEqual([['config', 4, "the value of a null config key must be a constant, not the name 'd'"]]);
});

test('the shipped gemma2.model still reads its config block', () => {
  expect(compileModel(GEMMA2, 'gemma2.model', { config: { rope_theta: 5e5 } }).graph?.hparams.rope_theta).toBe(5e5);
});

test('a negative layer count from config.json is an error at the loop, with the config key in a note (it built a 0-layer model)', () => {
  const [d] = errors(GEMMA2, 'gemma2.model', { config: { num_hidden_layers: -1 } });
  expect(d.message).toBe('the range 0 .. -1 runs backwards (its end is below its start)');
  expect(d.notes?.map((n) => n.message).join('\n')).toMatch(/'n_layers' is -1, from config key 'num_hidden_layers'/);
  expect(build(GEMMA2, 'gemma2.model', { config: { num_hidden_layers: 0 } }).hparams.n_layers).toBe(0); // 0 .. 0: empty, fine
});
