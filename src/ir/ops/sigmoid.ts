import { defineOp } from '../op';
import { inferFloatUnary } from './_kinds';

export const sigmoid = defineOp({
  name: 'sigmoid',
  doc: 'logistic sigmoid 1 / (1 + e ** -x)',
  arity: 1,
  elementwise: true,
  infer: (t) => inferFloatUnary('sigmoid', t),
  cpu: ({ tf }, [x]) => tf.sigmoid(x),
  xla: (b, [x]) => b.unary('logistic', x),
  vjp: (g, n, dy) => {
    const x = n.inputs[0];
    void x;
    return [g.op('mul', [dy, g.op('mul', [n.id, g.op('sub', [g.constant(1, g.type(x).dtype), n.id])])])];
  },
});
