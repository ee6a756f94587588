import { defineOp } from '../op';
import { ShapeError, fmtType, isInt, numel } from '../shape';
import { Dim } from '../types';

/**
 * scatter_add(u[..., K], idx[..., K], size = V) → [..., V]: zeros, then out[..., idx[..., k]] += u[..., k].
 * The transpose of take_along_axis (its derivative), and vice versa. Indices must be in [0, V).
 * XLA lowering: a one-hot compare and a reduction over K (the XlaBuilder has no scatter): O(rows·K·V).
 */
export const scatter_add = defineOp({
  name: 'scatter_add',
  doc: 'add values into `size` slots of a new last axis at integer indices (transpose of take_along_axis)',
  arity: 2,
  attrs: ['size'],
  infer: ([u, idx], a) => {
    if (!isInt(idx.dtype)) throw new ShapeError(`scatter_add needs integer indices, got ${fmtType(idx)}`);
    if (u.shape.length < 1 || idx.shape.length !== u.shape.length || idx.shape.some((d, i) => d !== u.shape[i])) {
      throw new ShapeError(`scatter_add: indices ${fmtType(idx)} must have the shape of the values ${fmtType(u)}`);
    }
    const size = a.size as number;
    if (!Number.isInteger(size) || size < 1) throw new ShapeError(`scatter_add: size must be a positive integer, got ${String(a.size)}`);
    return { dtype: u.dtype, shape: [...u.shape.slice(0, -1), size] as Dim[] };
  },
  cpu: ({ tf }, [u, idx], n) => {
    const v = n.attrs.size as number;
    const k = idx.shape[idx.rank - 1];
    const rows = idx.size / k;
    const base = tf.mul(tf.reshape(tf.range(0, rows, 1, 'int32'), [rows, 1]), tf.scalar(v, 'int32'));
    const flat = tf.reshape(tf.add(tf.reshape(idx, [rows, k]), base), [rows * k, 1]);
    // scatterND sums duplicate indices and has a kernel on both tfjs backends (unsortedSegmentSum lacks wasm).
    const s = tf.scatterND(flat, tf.reshape(u, [rows * k]), [rows * v]);
    return tf.reshape(s, [...u.shape.slice(0, -1), v]);
  },
  xla: (b, [u, idx], _n, out) => {
    const v = out.shape[out.shape.length - 1];
    const k = idx.type.shape[idx.type.shape.length - 1];
    const rows = numel(idx.type.shape) / k;
    const i2 = b.broadcastInDim(b.reshape(idx, [rows, k]), [rows, k, v], [0, 1]);
    const cls = b.iota({ dtype: idx.type.dtype, shape: [rows, k, v] }, 2);
    const onehot = b.convert(b.compare('EQ', i2, cls), u.type.dtype);
    const u3 = b.broadcastInDim(b.reshape(u, [rows, k]), [rows, k, v], [0, 1]);
    const s = b.reduce(b.binary('multiply', onehot, u3), [1], 'add');
    return b.reshape(s, out.shape);
  },
  vjp: (g, n, dy) => [g.op('take_along_axis', [dy, n.inputs[1]]), null],
});
