import { defineOp } from '../op';
import { inferFloatUnary } from './_kinds';

export const log = defineOp({
  name: 'log',
  doc: 'natural logarithm',
  arity: 1,
  elementwise: true,
  infer: (t) => inferFloatUnary('log', t),
  cpu: ({ tf }, [x]) => tf.log(x),
  xla: (b, [x]) => b.unary('log', x),
  vjp: (g, n, dy) => {
    const x = n.inputs[0];
    void x;
    return [g.op('div', [dy, x])];
  },
});
