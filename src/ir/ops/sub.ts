import { defineOp } from '../op';
import { inferBinary, sumTo, xlaBinary } from './_kinds';

export const sub = defineOp({
  name: 'sub',
  doc: 'a - b (NumPy broadcasting)',
  arity: 2,
  elementwise: true,
  infer: (t) => inferBinary('sub', t),
  cpu: ({ tf }, [a, b]) => tf.sub(a, b),
  xla: (b, ins, _n, out) => xlaBinary(b, 'subtract', ins, out.shape),
  vjp: (g, n, dy) => [sumTo(g, dy, g.type(n.inputs[0]).shape), sumTo(g, g.op('neg', [dy]), g.type(n.inputs[1]).shape)],
});
