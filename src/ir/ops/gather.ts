import { defineOp } from '../op';
import { ShapeError, fmtType, isInt } from '../shape';
import { bytesOf } from '../cost';

/** Rows of `table` picked by integer `indices`: out = indices.shape + table.shape[1:]. */
export const gather = defineOp({
  name: 'gather',
  doc: 'rows of a table picked by integer indices',
  arity: 2,
  infer: ([table, idx]) => {
    if (!isInt(idx.dtype)) throw new ShapeError(`gather needs integer indices, got ${fmtType(idx)}`);
    if (table.shape.length < 1) throw new ShapeError('gather needs a table of rank >= 1');
    return { dtype: table.dtype, shape: [...idx.shape, ...table.shape.slice(1)] };
  },
  cpu: ({ tf }, [table, idx]) => tf.gather(table, idx, 0),
  xla: (b, [table, idx], _n, out) => {
    const ri = idx.type.shape.length;
    const rest = table.type.shape.slice(1);
    return b.gather(
      table,
      idx,
      {
        offsetDims: rest.map((_, i) => ri + i),
        collapsedSliceDims: [0],
        startIndexMap: [0],
        indexVectorDim: ri,
        sliceSizes: [1, ...rest],
      },
      out.shape,
    );
  },
  // XLA: no flops; bytes = the gathered rows read + indices + output written.
  cost: ({ ins, out }) => ({ flops: 0, transcendentals: 0, bytes: 2 * bytesOf(out) + bytesOf(ins[1]) }),
  vjp: (g, n, dy) => {
    const [table, idx] = n.inputs;
    return [g.op('segment_sum', [dy, idx], { num: g.type(table).shape[0] }), null];
  },
});
