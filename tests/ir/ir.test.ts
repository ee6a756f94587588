import { GraphBuilder, verify, verifyProblems, printGraph, toJSON, fromJSON, countParams, ShapeError, nodeCost, getNode } from '../../src/ir';
import { produce } from 'immer';

function smallGraph() {
  const b = new GraphBuilder('small');
  const ids = b.input('input_ids', { dtype: 'i32', shape: ['batch', 'seq'] });
  const emb = b.param('model.embed_tokens.weight', { dtype: 'f32', shape: [16, 8] });
  const x = b.within('model', () => b.op('gather', [emb, ids]));
  const w = b.within('model.layers.0.mlp', () => b.param('model.layers.0.mlp.up_proj.weight', { dtype: 'f32', shape: [4, 8] }));
  const h = b.within('model.layers.0.mlp', () => b.op('matmul', [x, w], { transpose_a: false, transpose_b: true }));
  const t = b.op('tanh', [h]);
  return b.build({ outputs: [{ name: 'out', node: t }], dims: ['batch', 'seq'] });
}

describe('IR core', () => {
  test('types come from the op rules, with symbolic dims', () => {
    const g = smallGraph();
    verify(g);
    expect(g.nodes.map((n) => n.type.shape)).toEqual([['batch', 'seq'], [16, 8], ['batch', 'seq', 8], [4, 8], ['batch', 'seq', 4], ['batch', 'seq', 4]]);
    expect(g.nodes[4].scope).toBe('model.layers.0.mlp');
  });

  test('shape errors are ShapeErrors with a readable message', () => {
    const b = new GraphBuilder();
    const a = b.input('a', { dtype: 'f32', shape: [2, 3] });
    const c = b.input('c', { dtype: 'f32', shape: [4, 5] });
    expect(() => b.op('matmul', [a, c])).toThrow(ShapeError);
    expect(() => b.op('matmul', [a, c])).toThrow(/contracting dims differ/);
    expect(() => b.op('add', [a, c])).toThrow(/do not broadcast/);
    expect(() => b.op('reshape', [a], { shape: [5] })).toThrow(/cannot reshape/);
  });

  test('params are counted, embedding = tables of gathers', () => {
    expect(countParams(smallGraph())).toEqual({ params: 16 * 8 + 4 * 8, embedding_params: 128, tensors: 2 });
  });

  test('the verifier catches dangling uses, wrong types and duplicates', () => {
    const g = smallGraph();
    const dangling = produce(g, (d) => {
      d.nodes[5].inputs[0] = 99;
    });
    expect(verifyProblems(dangling)[0].message).toMatch(/not defined before it/);
    const badType = produce(g, (d) => {
      (d.nodes[5].type as { shape: unknown }).shape = [1];
    });
    expect(verifyProblems(badType)[0].message).toMatch(/rule gives/);
    const cyclic = produce(g, (d) => {
      d.nodes[2].inputs[0] = 5;
    });
    expect(() => verify(cyclic, 'my-pass')).toThrow(/after pass 'my-pass'/);
  });

  test('JSON round-trips', () => {
    const g = smallGraph();
    const back = fromJSON(JSON.parse(JSON.stringify(toJSON(g))));
    expect(back).toEqual(g);
    expect(printGraph(back)).toBe(printGraph(g));
  });

  test('printer shows scopes and types', () => {
    const text = printGraph(smallGraph());
    expect(text).toContain('# model.layers.0.mlp');
    expect(text).toMatch(/%4 = matmul\(%2, %3, transpose_a=false, transpose_b=true\) : f32\[batch, seq, 4\]/);
  });

  test('costs follow XLA conventions (dot = 2 * out * K, tanh transcendental)', () => {
    const g = smallGraph();
    const mm = getNode(g, 4);
    expect(nodeCost(mm, [{ dtype: 'f32', shape: [2, 3, 8] }, { dtype: 'f32', shape: [4, 8] }], { dtype: 'f32', shape: [2, 3, 4] }).flops).toBe(2 * 24 * 8);
    const th = getNode(g, 5);
    const c = nodeCost(th, [{ dtype: 'f32', shape: [2, 3, 4] }], { dtype: 'f32', shape: [2, 3, 4] });
    expect(c).toEqual({ flops: 0, transcendentals: 24, bytes: 2 * 24 * 4 });
  });
});

describe('CPU lowerings agree with XLA semantics', () => {
  test('integer division truncates toward zero (as XLA divide)', async () => {
    const tf = await import('@tensorflow/tfjs-core');
    await import('@tensorflow/tfjs-backend-cpu');
    await tf.setBackend('cpu');
    const { getOp } = await import('../../src/ir');
    const b = new GraphBuilder();
    const x = b.input('x', { dtype: 'i32', shape: [6] });
    const y = b.input('y', { dtype: 'i32', shape: [6] });
    const g = b.build({ outputs: [{ name: 'q', node: b.op('div', [x, y]) }] });
    const n = g.nodes[2];
    const out = getOp('div').cpu!({ tf, env: {}, state: new Map() }, [tf.tensor1d([-7, 7, -7, 7, 6, -6], 'int32'), tf.tensor1d([2, 2, -2, -2, 3, 3], 'int32')], n);
    expect(Array.from(await out.data())).toEqual([-3, 3, 3, -3, 2, -2]);
  });
});
