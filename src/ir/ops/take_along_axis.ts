import { defineOp } from '../op';
import { ShapeError, fmtType, isInt } from '../shape';
import { Dim } from '../types';
import { bytesOf } from '../cost';

/**
 * take_along_axis(x[..., V], idx[..., K]) → [..., K]: out[..., k] = x[..., idx[..., k]] (last axis; the leading
 * dims of x and idx must be equal). Picks the label / teacher-id logits of a vocabulary without a one-hot.
 * Indices must be in [0, V).
 */
export const take_along_axis = defineOp({
  name: 'take_along_axis',
  doc: 'pick entries of the last axis by integer indices: out[..., k] = x[..., idx[..., k]]',
  arity: 2,
  infer: ([x, idx]) => {
    if (!isInt(idx.dtype)) throw new ShapeError(`take_along_axis needs integer indices, got ${fmtType(idx)}`);
    const r = x.shape.length;
    if (r < 1 || idx.shape.length !== r || idx.shape.slice(0, -1).some((d, i) => d !== x.shape[i])) {
      throw new ShapeError(`take_along_axis: indices ${fmtType(idx)} must match ${fmtType(x)} except in the last dim`);
    }
    return { dtype: x.dtype, shape: [...x.shape.slice(0, -1), idx.shape[r - 1]] as Dim[] };
  },
  cpu: ({ tf }, [x, idx]) => {
    const v = x.shape[x.rank - 1];
    const k = idx.shape[idx.rank - 1];
    const rows = x.size / v;
    const base = tf.mul(tf.reshape(tf.range(0, rows, 1, 'int32'), [rows, 1]), tf.scalar(v, 'int32'));
    const flat = tf.add(tf.reshape(idx, [rows, k]), base);
    return tf.reshape(tf.gather(tf.reshape(x, [rows * v]), flat), idx.shape);
  },
  // One-hot form (compare with an iota over the last axis, select, sum): exact (adds zeros), fuses into one
  // reduction, and partitions like any reduction — a vocabulary split over devices becomes a partial sum of
  // [..., K] instead of an all-gather of the whole [..., V] operand (what TPU cross-entropy does).
  xla: (b, [x, idx], _n, out) => {
    const shape = x.type.shape;
    const r = shape.length;
    const v = shape[r - 1];
    const k = idx.type.shape[r - 1];
    const full = [...shape.slice(0, -1), k, v];
    const keep = [...Array(r - 1).keys()];
    const hot = b.compare('EQ', b.broadcastInDim(idx, full, [...keep, r - 1]), b.iota({ dtype: idx.type.dtype, shape: full }, r));
    const xs = b.broadcastInDim(x, full, [...keep, r]);
    const picked = b.select(hot, xs, b.constant(0, { dtype: x.type.dtype, shape: full }));
    return b.reduce(picked, [r], 'add');
  },
  cost: ({ ins, out }) => ({ flops: 0, transcendentals: 0, bytes: 2 * bytesOf(out) + bytesOf(ins[1]) }),
  vjp: (g, n, dy) => {
    const [x, idx] = n.inputs;
    const xs = g.type(x).shape;
    return [g.op('scatter_add', [dy, idx], { size: xs[xs.length - 1] }), null];
  },
});


