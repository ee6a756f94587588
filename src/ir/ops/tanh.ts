import { defineOp } from '../op';
import { inferFloatUnary } from './_kinds';

export const tanh = defineOp({
  name: 'tanh',
  doc: 'hyperbolic tangent',
  arity: 1,
  elementwise: true,
  infer: (t) => inferFloatUnary('tanh', t),
  cpu: ({ tf }, [x]) => tf.tanh(x),
  xla: (b, [x]) => b.unary('tanh', x),
  vjp: (g, n, dy) => {
    const x = n.inputs[0];
    void x;
    return [g.op('mul', [dy, g.op('sub', [g.constant(1, g.type(x).dtype), g.op('mul', [n.id, n.id])])])];
  },
});
