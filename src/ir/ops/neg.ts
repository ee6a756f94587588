import { defineOp } from '../op';
import { ShapeError } from '../shape';

export const neg = defineOp({
  name: 'neg',
  doc: '-x',
  arity: 1,
  elementwise: true,
  infer: ([x]) => {
    if (x.dtype === 'bool') throw new ShapeError('neg needs a numeric operand');
    return x;
  },
  cpu: ({ tf }, [x]) => tf.neg(x),
  xla: (b, [x]) => b.unary('negate', x),
  vjp: (g, _n, dy) => [g.op('neg', [dy])],
});
