import { GraphBuilder } from '../../src/ir';
import { execute, initCpuBackend, tf, ParamStore, OpProfile, PackedParams } from '../../src/backends/cpu';

/** y = tanh(gather(emb, ids) · wᵀ) + positions (as f32), plus a dead branch that must never run. */
function graph() {
  const b = new GraphBuilder('small');
  const ids = b.input('input_ids', { dtype: 'i32', shape: ['batch', 'seq'] });
  const pos = b.input('positions', { dtype: 'i32', shape: ['seq'] }, { default: 'arange' });
  const emb = b.param('emb', { dtype: 'f32', shape: [5, 3] });
  const w = b.param('w', { dtype: 'f32', shape: [2, 3] });
  const x = b.op('gather', [emb, ids]);
  const h = b.op('matmul', [x, w], { transpose_b: true });
  const t = b.op('tanh', [h]);
  const p = b.op('reshape', [b.op('cast', [pos], { dtype: 'f32' })], { shape: ['seq', 1] });
  const y = b.op('add', [t, p]);
  b.op('exp', [y]); // dead
  return { g: b.build({ outputs: [{ name: 'y', node: y }], dims: ['batch', 'seq'], taps: { hidden: h } }), h };
}

function params(): ParamStore {
  return new Map([
    ['emb', tf.tensor2d([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1]])],
    ['w', tf.tensor2d([[0.5, -0.5, 1], [1, 1, 1]])],
  ]);
}

function expected(ids: number[][]): number[][][] {
  const emb = [[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1]];
  const w = [[0.5, -0.5, 1], [1, 1, 1]];
  return ids.map((row) => row.map((id, s) => w.map((wr) => Math.tanh(wr.reduce((a, v, k) => a + v * emb[id][k], 0)) + s)));
}

describe.each(['wasm', 'cpu'] as const)('executor on tfjs %s', (kind) => {
  beforeAll(async () => {
    await initCpuBackend(kind);
    expect(tf.getBackend()).toBe(kind);
  });

  test('computes the outputs, binds dims from feeds, fills arange inputs, fetches taps', () => {
    const { g, h } = graph();
    const ps = params();
    const ids = [[1, 2, 3], [4, 0, 1]];
    const feed = tf.tensor2d(ids, [2, 3], 'int32');
    const prof: OpProfile = new Map();
    const r = execute(g, { input_ids: feed }, ps, { fetch: [h], profile: prof });
    const y = r.outputs.y.arraySync() as number[][][];
    const want = expected(ids);
    y.flat(2).forEach((v, i) => expect(v).toBeCloseTo(want.flat(2)[i], 6));
    expect(r.fetched.get(h)!.shape).toEqual([2, 3, 2]);
    expect(prof.has('exp')).toBe(false); // dead code is not run
    expect(prof.get('matmul')!.calls).toBe(1);
    // feeds and params still alive
    expect(feed.isDisposed).toBe(false);
    for (const t of ps.values()) expect(t.isDisposed).toBe(false);
    r.outputs.y.dispose();
    r.fetched.get(h)!.dispose();
    feed.dispose();
    for (const t of ps.values()) t.dispose();
  });

  test('tf.memory() stays flat over repeated runs', () => {
    const { g } = graph();
    const ps = params();
    const feed = tf.tensor2d([[1, 2], [3, 4]], [2, 2], 'int32');
    const run = () => execute(g, { input_ids: feed }, ps).outputs.y.dispose();
    run();
    const before = tf.memory().numTensors;
    const bytes = tf.memory().numBytes;
    for (let i = 0; i < 5; i++) run();
    expect(tf.memory().numTensors).toBe(before);
    expect(tf.memory().numBytes).toBe(bytes);
    feed.dispose();
    for (const t of ps.values()) t.dispose();
  });

  test('packed params: the matmul weight is transposed once and reused; same results; remade when the param changes; freed by dispose', () => {
    const { g } = graph();
    const ps = params();
    const feed = tf.tensor2d([[1, 2, 3], [4, 0, 1]], [2, 3], 'int32');
    const plain = execute(g, { input_ids: feed }, ps).outputs.y;
    const packed = new PackedParams();
    const before = tf.memory().numTensors;
    const run = () => execute(g, { input_ids: feed }, ps, { packed }).outputs.y;
    const a = run();
    expect(packed.size).toBe(1); // 'w' as [in, out]; 'emb' feeds a gather and stays as stored
    expect(tf.memory().numTensors).toBe(before + 2); // the output and the packed weight
    const b = run();
    expect(tf.memory().numTensors).toBe(before + 3); // no new packed copy
    expect(Array.from(a.dataSync())).toEqual(Array.from(plain.dataSync()));
    expect(Array.from(b.dataSync())).toEqual(Array.from(plain.dataSync()));
    // an optimiser step replaces the tensor under the name: the packed copy follows
    ps.get('w')!.dispose();
    ps.set('w', tf.tensor2d([[1, 0, 0], [0, 0, 2]]));
    const c = run();
    const want = [[1, 2, 3], [4, 0, 1]].map((row) => row.map((id, s) => { const e = [[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1]][id]; return [Math.tanh(e[0]) + s, Math.tanh(2 * e[2]) + s]; }));
    Array.from(c.dataSync()).forEach((v, i) => expect(v).toBeCloseTo(want.flat(2)[i], 6));
    expect(packed.size).toBe(1);
    packed.dispose();
    expect(packed.size).toBe(0);
    for (const t of [plain, a, b, c, feed, ...ps.values()]) t.dispose();
    expect(tf.memory().numTensors).toBe(before - 4); // everything this test made is gone (plain, feed, 2 params)
  });

  test('an output that is a feed or the same node twice is handed out as separate tensors', () => {
    const b = new GraphBuilder('id');
    const x = b.input('x', { dtype: 'f32', shape: [2] });
    const g = b.build({ outputs: [{ name: 'a', node: x }, { name: 'b', node: x }] });
    const feed = tf.tensor1d([1, 2]);
    const r = execute(g, { x: feed }, new Map());
    expect(r.outputs.a).not.toBe(feed);
    expect(r.outputs.a).not.toBe(r.outputs.b);
    r.outputs.a.dispose();
    r.outputs.b.dispose();
    expect(feed.isDisposed).toBe(false);
    feed.dispose();
  });

  test('errors name the input or param', () => {
    const { g } = graph();
    const ps = params();
    const leak = tf.memory().numTensors;
    expect(() => execute(g, {}, ps)).toThrow(/input 'input_ids' \(i32\[batch, seq\]\) is not fed/);
    const bad = tf.tensor1d([1, 2], 'int32');
    expect(() => execute(g, { input_ids: bad }, ps)).toThrow(/input 'input_ids': expected rank 2/);
    const f = tf.tensor2d([[1, 2]], [1, 2], 'float32');
    expect(() => execute(g, { input_ids: f }, ps)).toThrow(/input 'input_ids': expected int32 \(i32\), got float32/);
    const ids = tf.tensor2d([[1, 2]], [1, 2], 'int32');
    const pos = tf.tensor1d([0, 1, 2], 'int32');
    expect(() => execute(g, { input_ids: ids, positions: pos }, ps)).toThrow(/input 'positions': dim 0 \('seq'\) is 3, but 'seq' = 2/);
    expect(() => execute(g, { input_ids: ids }, new Map([['emb', ps.get('emb')!]]))).toThrow(/param 'w' is not in the parameter store/);
    const wrong = new Map(ps);
    wrong.set('w', tf.zeros([3, 2]));
    expect(() => execute(g, { input_ids: ids }, wrong)).toThrow(/param 'w': expected shape \[2, 3\], got \[3, 2\]/);
    wrong.get('w')!.dispose();
    for (const t of [bad, f, ids, pos, ...ps.values()]) t.dispose();
    // Failed runs free what they had computed.
    expect(tf.memory().numTensors).toBe(leak - 2);
  });
});
