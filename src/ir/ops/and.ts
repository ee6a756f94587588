import { defineOp } from '../op';
import { ShapeError, broadcastShapes } from '../shape';
import { xlaBinary } from './_kinds';

export const and = defineOp({
  name: 'and',
  doc: 'logical and of bool tensors',
  arity: 2,
  elementwise: true,
  infer: ([a, b]) => {
    if (a.dtype !== 'bool' || b.dtype !== 'bool') throw new ShapeError('and needs bool operands');
    return { dtype: 'bool', shape: broadcastShapes(a.shape, b.shape) };
  },
  cpu: ({ tf }, [a, b]) => tf.logicalAnd(a, b),
  xla: (b, ins, _n, out) => xlaBinary(b, 'and', ins, out.shape),
  vjp: () => [null, null],
});
