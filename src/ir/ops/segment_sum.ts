import { defineOp } from '../op';
import { ShapeError, fmtType, isInt, concreteDim } from '../shape';
import { Dim } from '../types';

/**
 * segment_sum(data[I..., R...], ids[I...]) → [num, R...]: row r is the sum of the data rows whose id is r.
 * The derivative of gather. XLA lowering: a one-hot matrix product (what TPU embedding backprops do).
 */
export const segment_sum = defineOp({
  name: 'segment_sum',
  doc: 'sum data rows into `num` buckets by integer id (the transpose of gather)',
  arity: 2,
  attrs: ['num'],
  infer: ([data, ids], a) => {
    if (!isInt(ids.dtype)) throw new ShapeError(`segment_sum needs integer ids, got ${fmtType(ids)}`);
    const k = ids.shape.length;
    if (data.shape.length < k || ids.shape.some((d, i) => d !== data.shape[i])) {
      throw new ShapeError(`segment_sum: ids ${fmtType(ids)} must prefix data ${fmtType(data)}`);
    }
    return { dtype: data.dtype, shape: [a.num as Dim, ...data.shape.slice(k)] };
  },
  cpu: ({ tf, env }, [data, ids], n) => {
    const k = ids.rank;
    const rows = ids.size;
    const flat = tf.reshape(data, [rows, ...data.shape.slice(k)]);
    // scatterND sums duplicate ids and, unlike unsortedSegmentSum, has a kernel on the wasm backend too.
    return tf.scatterND(tf.reshape(ids, [rows, 1]), flat, [concreteDim(n.attrs.num as Dim, env), ...data.shape.slice(k)]);
  },
  xla: (b, [data, ids], _n, out) => {
    const k = ids.type.shape.length;
    const num = out.shape[0];
    const rows = ids.type.shape.reduce((a, d) => a * d, 1);
    const rest = data.type.shape.slice(k);
    const flatIds = b.reshape(ids, [rows]);
    const flatData = b.reshape(data, [rows, ...rest]);
    const ids2 = b.broadcastInDim(flatIds, [rows, num], [0]);
    const cls = b.iota({ dtype: ids.type.dtype, shape: [rows, num] }, 1);
    const onehot = b.convert(b.compare('EQ', ids2, cls), data.type.dtype);
    return b.dot(onehot, flatData, { lhsBatch: [], rhsBatch: [], lhsContract: [0], rhsContract: [0] });
  },
  vjp: (g, n, dy) => [g.op('gather', [dy, n.inputs[1]], { axis: 0 }), null],
});
