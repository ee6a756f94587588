import { defineOp } from '../op';
import { ShapeError } from '../shape';

export const abs = defineOp({
  name: 'abs',
  doc: '|x|',
  arity: 1,
  elementwise: true,
  infer: ([x]) => {
    if (x.dtype === 'bool') throw new ShapeError('abs needs a numeric operand');
    return x;
  },
  cpu: ({ tf }, [x]) => tf.abs(x),
  xla: (b, [x]) => b.unary('abs', x),
  vjp: (g, n, dy) => {
    const x = n.inputs[0];
    const pos = g.op('compare', [x, g.constant(0, g.type(x).dtype)], { dir: 'ge' });
    return [g.op('select', [pos, dy, g.op('neg', [dy])])];
  },
});
