/** The IR the elaborator builds: names, scopes, taps, attributes, and the language's compile-time semantics. */
import { countOps } from '../../src/ir/graph';
import { verify } from '../../src/ir/verify';
import type { Graph, Node } from '../../src/ir/types';
import { GEMMA2, build, model } from './helpers';

const byId = (g: Graph, id: number): Node => g.nodes.find((n) => n.id === id)!;
const out = (g: Graph, name = 'logits'): Node => byId(g, g.outputs.find((o) => o.name === name)!.node);

describe('gemma2 IR', () => {
  const g = build(GEMMA2, 'gemma2.model', { variant: '2b' });

  test('verifies', () => {
    expect(() => verify(g)).not.toThrow();
    expect(g.name).toBe('gemma2');
  });

  test('inputs with dtypes, symbolic dims and the arange default', () => {
    const inputs = g.nodes.filter((n) => n.op === 'input');
    expect(inputs.map((n) => n.attrs)).toEqual([
      { name: 'input_ids', dtype: 'i32', shape: ['batch', 'seq'] },
      { name: 'positions', dtype: 'i32', shape: ['seq'], default: 'arange' },
    ]);
    expect(g.dims).toEqual(['batch', 'seq']);
  });

  test('the named output has the logits type', () => {
    expect(g.outputs.map((o) => o.name)).toEqual(['logits']);
    expect(out(g).type).toEqual({ dtype: 'f32', shape: ['batch', 'seq', 256000] });
    // softcap(linear(x, embed), final_cap) = 30 * tanh(... / 30)
    expect(out(g).op).toBe('mul');
  });

  test('param names follow the labelled scopes', () => {
    const names = g.nodes.filter((n) => n.op === 'param').map((n) => String(n.attrs.name));
    expect(names).toContain('model.embed_tokens.weight');
    expect(names).toContain('model.layers.25.self_attn.q_proj.weight');
    expect(names).toContain('model.layers.0.post_feedforward_layernorm.weight');
    expect(names).toContain('model.norm.weight');
    const q = g.nodes.find((n) => n.attrs.name === 'model.layers.3.self_attn.q_proj.weight')!;
    expect(q.scope).toBe('model.layers.3.self_attn');
    expect(q.type.shape).toEqual([2048, 2304]);
  });

  test('a tap for every labelled call', () => {
    expect(Object.keys(g.taps)).toHaveLength(26 * 6 + 26 + 1);
    expect(byId(g, g.taps['model.layers.7']).type.shape).toEqual(['batch', 'seq', 2304]);
    expect(byId(g, g.taps['model.layers.7.mlp']).scope).toBe('model.layers.7.mlp');
    expect(g.taps['model.norm']).toBeDefined();
  });

  test('nodes carry source locations', () => {
    const gather = g.nodes.find((n) => n.op === 'gather')!;
    const line = GEMMA2.split('\n').findIndex((l) => l.includes('x = gather(embed, input_ids)')) + 1;
    expect(gather.loc).toEqual({ file: 'gemma2.model', line, col: 7 });
    const softmax = g.nodes.find((n) => n.op === 'softmax')!;
    expect(softmax.loc?.file).toBe('prelude.model');
  });

  test('negative axes are normalised; linear is matmul with transpose_b', () => {
    for (const n of g.nodes) {
      if (n.op === 'reduce') expect(n.attrs).toEqual({ kind: 'mean', axes: [2], keepdims: true });
      if (n.op === 'softmax') expect(n.attrs.axis).toBe(3);
      if (n.op === 'slice') expect(n.attrs.axis).toBe(3);
    }
    const qproj = g.nodes.find((n) => n.op === 'matmul' && n.inputs.some((i) => byId(g, i).attrs.name === 'model.layers.0.self_attn.q_proj.weight'))!;
    expect(qproj.attrs).toEqual({ transpose_a: false, transpose_b: true });
  });

  test('local layers get the sliding-window mask, global ones do not', () => {
    // Each local layer adds `i - j < window` (sub, compare, and) to the causal mask.
    expect(countOps(g).and).toBe(13);
    const windows = g.nodes.filter((n) => n.op === 'constant' && n.attrs.value === 4096 && n.type.dtype === 'i32');
    expect(windows.map((n) => n.scope)).toEqual(Array.from({ length: 13 }, (_, i) => `model.layers.${2 * i}.self_attn`));
  });

  test('-inf constants are encoded for JSON', () => {
    expect(g.nodes.some((n) => n.op === 'constant' && n.attrs.value === '-inf')).toBe(true);
  });

  test('op counts for the 2B (symbolic batch/seq)', () => {
    const c = countOps(g);
    expect(c.param).toBe(288);
    expect(c.matmul).toBe(26 * 9 + 1);
    expect(c.softmax).toBe(26);
    expect(c.gelu_tanh).toBe(26);
    expect(c.tanh).toBe(27);
    expect(c.gather).toBe(1);
  });
});

describe('language semantics', () => {
  test('compile-time arithmetic: exact int division stays int, otherwise float; ** % comparisons and logic', () => {
    const g = build(
      `model t
hparams {
  a = 12 / 4; b = 7 / 2; c = 2 ** 10; d = -7 % 3; e = 3 < 4 && !(2 >= 5) || false
  f = if a == 3 then 10 else 20; s = "x"; t = s == "x"; h = 1e-6; i = 256 ** -0.5
}
forward(x: f32[2]) { return y = x }`,
      't.model',
    );
    expect(g.hparams).toMatchObject({ a: 3, b: 3.5, c: 1024, d: 2, e: true, f: 10, s: 'x', t: true, h: 1e-6, i: 0.0625 });
  });

  test('hparams may reference each other in any order', () => {
    const g = build(`hparams { a = b * 2; b = c + 1; c = 4 }\nforward(x: f32[a]) { return x }`, 't.model');
    expect(g.hparams).toMatchObject({ a: 10, b: 5, c: 4 });
    expect(g.outputs[0].name).toBe('output');
  });

  test('for loops, if statements and early returns', () => {
    const g = build(
      model(
        `  y = x
  for i in 0 .. n + 1 {
    if i % 2 == 0 { y = y * 2.0 } else if i == 1 { y = y + 1.0 } else { y = y - 1.0 }
  }
  return y = twice(y, true)`,
        `block twice(v, really) {
  if really { return v + v }
  return v
}`,
      ),
      't.model',
    );
    expect(g.nodes.filter((n) => n.op !== 'input' && n.op !== 'constant').map((n) => n.op)).toEqual(['mul', 'add', 'mul', 'add']);
  });

  test('named and default arguments', () => {
    const g = build(model(`  return y = f(x, c = 3.0)`, `block f(v, a = 1.0, b = a * 2.0, c = 0.0) { return v * b + c }`), 't.model');
    const consts = g.nodes.filter((n) => n.op === 'constant').map((n) => n.attrs.value);
    expect(consts).toEqual([2, 3]);
  });

  test('unlabelled calls inline in the current scope; labelled calls push scope segments', () => {
    const g = build(
      model(
        `  h = outer: wrap(x)
  return y = h`,
        `block inner(v) { return v * param scale[dim(v, -1)] }
block wrap(v) {
  a = inner(v)
  return blocks[n * 2].sub: inner(a)
}`,
      ),
      't.model',
    );
    const params = g.nodes.filter((n) => n.op === 'param');
    expect(params.map((n) => [n.attrs.name, n.scope])).toEqual([
      ['outer.scale', 'outer'],
      ['outer.blocks.4.sub.scale', 'outer.blocks.4.sub'],
    ]);
    expect(Object.keys(g.taps).sort()).toEqual(['outer', 'outer.blocks.4.sub']);
  });

  test('a param declared twice under the same name is shared', () => {
    const g = build(model(`  a = x * param w[d]\n  return y = a + param w[d]`), 't.model');
    expect(g.nodes.filter((n) => n.op === 'param')).toHaveLength(1);
  });

  test('model blocks shadow prelude blocks; values and blocks live in separate namespaces', () => {
    const g = build(
      model(`  softcap = 2.0\n  return y = softcap(x, softcap)`, `block softcap(v, cap) { return v * cap }`),
      't.model',
    );
    expect(g.nodes.filter((n) => n.op !== 'input').map((n) => n.op)).toEqual(['constant', 'mul']);
  });

  test('dim, shape, rank, len, lists and indexing are compile-time', () => {
    const g = build(
      model(`  s = shape(x)
  r = reshape(x, [s[0], s[1], d / n, n])
  return y = sum(r, axis = [-1, -2]) * (rank(r) + len([1, 2]) + dim(x, -1))`),
      't.model',
    );
    const reshape = g.nodes.find((n) => n.op === 'reshape')!;
    expect(reshape.attrs.shape).toEqual(['batch', 'seq', 4, 2]);
    expect(g.nodes.find((n) => n.op === 'reduce')!.attrs).toEqual({ kind: 'sum', axes: [2, 3], keepdims: false });
    expect(g.nodes.find((n) => n.op === 'constant')!.attrs.value).toBe(4 + 2 + 8);
  });

  test('tensor ⊕ number inserts a constant of the tensor dtype; bool tensors combine with && || !', () => {
    const g = build(
      `dim t
forward(p: i32[t]) {
  m = iota([t, t], axis = 1) <= 3 && !(p > 0) || false
  return y = select(m, 1.5, -inf)
}`,
      't.model',
    );
    const consts = g.nodes.filter((n) => n.op === 'constant').map((n) => [n.attrs.value, n.attrs.dtype]);
    expect(consts).toEqual([
      [3, 'i32'],
      [0, 'i32'],
      [0, 'bool'],
      [1.5, 'f32'],
      ['-inf', 'f32'],
    ]);
    expect(g.nodes.filter((n) => n.op === 'compare').map((n) => n.attrs.dir)).toEqual(['le', 'gt']);
    expect(countOps(g)).toMatchObject({ and: 1, or: 1, not: 1, select: 1 });
  });

  test('bound dims become numbers', () => {
    const g = build(model(`  return y = x`), 't.model', { dims: { seq: 5 } });
    expect(g.dims).toEqual(['batch']);
    expect(g.nodes[0].type.shape).toEqual(['batch', 5, 8]);
  });

  test('direct hparam overrides', () => {
    const g = build(model(`  return y = x`), 't.model', { hparams: { d: 16 } });
    expect(g.nodes[0].type.shape).toEqual(['batch', 'seq', 16]);
  });
});
