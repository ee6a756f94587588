import { defineOp } from '../op';
import { ShapeError } from '../shape';

export const not = defineOp({
  name: 'not',
  doc: 'logical not of a bool tensor',
  arity: 1,
  elementwise: true,
  infer: ([a]) => {
    if (a.dtype !== 'bool') throw new ShapeError('not needs a bool operand');
    return a;
  },
  cpu: ({ tf }, [a]) => tf.logicalNot(a),
  xla: (b, [x]) => b.unary('not', x),
  vjp: () => [null],
});
