import { defineOp } from '../op';
import { inferFloatUnary } from './_kinds';

export const exp = defineOp({
  name: 'exp',
  doc: 'e ** x',
  arity: 1,
  elementwise: true,
  infer: (t) => inferFloatUnary('exp', t),
  cpu: ({ tf }, [x]) => tf.exp(x),
  xla: (b, [x]) => b.unary('exponential', x),
  vjp: (g, n, dy) => {
    const x = n.inputs[0];
    void x;
    return [g.op('mul', [dy, n.id])];
  },
});
