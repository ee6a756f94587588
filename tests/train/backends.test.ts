/** The scatter-style lowerings used by derivatives (segment_sum, scatter_add) agree on both tfjs backends, duplicates summed. */
import { GraphBuilder } from '../../src/ir';
import { initCpuBackend, execute, tf } from '../../src/backends/cpu';

function graph() {
  const b = new GraphBuilder('scatter');
  const d = b.input('d', { dtype: 'f32', shape: [4, 2] });
  const ids = b.input('ids', { dtype: 'i32', shape: [4] });
  const u = b.input('u', { dtype: 'f32', shape: [2, 3] });
  const idx = b.input('idx', { dtype: 'i32', shape: [2, 3] });
  const s = b.op('segment_sum', [d, ids], { num: 3 });
  const a = b.op('scatter_add', [u, idx], { size: 4 });
  const t = b.op('take_along_axis', [a, idx]);
  return b.build({ outputs: [{ name: 's', node: s }, { name: 'a', node: a }, { name: 't', node: t }] });
}

test.each(['cpu', 'wasm'] as const)('on tfjs %s', async (kind) => {
  await initCpuBackend(kind);
  const feeds = {
    d: tf.tensor([1, 2, 3, 4, 5, 6, 7, 8], [4, 2]),
    ids: tf.tensor([2, 0, 2, 1], [4], 'int32'),
    u: tf.tensor([1, 2, 3, 4, 5, 6], [2, 3]),
    idx: tf.tensor([3, 3, 0, 1, 2, 1], [2, 3], 'int32'),
  };
  const r = execute(graph(), feeds, new Map());
  expect(Array.from(r.outputs.s.dataSync())).toEqual([3, 4, 7, 8, 6, 8]);
  expect(Array.from(r.outputs.a.dataSync())).toEqual([3, 0, 0, 3, 0, 10, 5, 0]);
  expect(Array.from(r.outputs.t.dataSync())).toEqual([3, 3, 3, 10, 5, 10]);
  Object.values(r.outputs).forEach((t) => t.dispose());
  Object.values(feeds).forEach((t) => t.dispose());
});
