import { defineOp } from '../op';
import { ShapeError, broadcastShapes } from '../shape';
import { xlaBinary } from './_kinds';

export const or = defineOp({
  name: 'or',
  doc: 'logical or of bool tensors',
  arity: 2,
  elementwise: true,
  infer: ([a, b]) => {
    if (a.dtype !== 'bool' || b.dtype !== 'bool') throw new ShapeError('or needs bool operands');
    return { dtype: 'bool', shape: broadcastShapes(a.shape, b.shape) };
  },
  cpu: ({ tf }, [a, b]) => tf.logicalOr(a, b),
  xla: (b, ins, _n, out) => xlaBinary(b, 'or', ins, out.shape),
  vjp: () => [null, null],
});
