import { defineOp } from '../op';
import { inferBinary, sumTo, xlaBinary } from './_kinds';

export const mul = defineOp({
  name: 'mul',
  doc: 'a * b (NumPy broadcasting)',
  arity: 2,
  elementwise: true,
  infer: (t) => inferBinary('mul', t),
  cpu: ({ tf }, [a, b]) => tf.mul(a, b),
  xla: (b, ins, _n, out) => xlaBinary(b, 'multiply', ins, out.shape),
  vjp: (g, n, dy) => {
    const [a, b] = n.inputs;
    return [sumTo(g, g.op('mul', [dy, b]), g.type(a).shape), sumTo(g, g.op('mul', [dy, a]), g.type(b).shape)];
  },
});
