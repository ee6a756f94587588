import { defineOp, Tensor } from '../op';
import { ShapeError, axisOf, fmtType } from '../shape';
import { Dim } from '../types';

/** Join tensors along an axis. */
export const concat = defineOp({
  name: 'concat',
  doc: 'join tensors along an axis',
  arity: 'variadic',
  attrs: ['axis'],
  infer: (xs, a) => {
    const r = xs[0].shape.length;
    const axis = axisOf(a.axis as number, r);
    let total: Dim = 0;
    for (const x of xs) {
      if (x.dtype !== xs[0].dtype || x.shape.length !== r || x.shape.some((d, i) => i !== axis && d !== xs[0].shape[i])) {
        throw new ShapeError(`concat along axis ${axis}: ${fmtType(x)} does not match ${fmtType(xs[0])}`);
      }
      const d = x.shape[axis];
      if (typeof d !== 'number' || typeof total !== 'number') throw new ShapeError('concat along a symbolic dimension is not supported');
      total += d;
    }
    const shape = [...xs[0].shape];
    shape[axis] = total;
    return { dtype: xs[0].dtype, shape };
  },
  cpu: ({ tf }, xs, n) => tf.concat(xs as Tensor[], axisOf(n.attrs.axis as number, xs[0].rank)),
  xla: (b, xs, n) => b.concatenate(xs, axisOf(n.attrs.axis as number, xs[0].type.shape.length)),
  cost: () => ({ flops: 0, transcendentals: 0 }),
  vjp: (g, n, dy) => {
    const axis = axisOf(n.attrs.axis as number, n.type.shape.length);
    let at = 0;
    return n.inputs.map((i) => {
      const len = g.type(i).shape[axis] as number;
      const s = g.op('slice', [dy], { axis, start: at, end: at + len });
      at += len;
      return s;
    });
  },
});
