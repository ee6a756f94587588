import { defineOp } from '../op';
import { inferBinary, sumTo, xlaBinary } from './_kinds';

export const add = defineOp({
  name: 'add',
  doc: 'a + b (NumPy broadcasting)',
  arity: 2,
  elementwise: true,
  infer: (t) => inferBinary('add', t),
  cpu: ({ tf }, [a, b]) => tf.add(a, b),
  xla: (b, ins, _n, out) => xlaBinary(b, 'add', ins, out.shape),
  vjp: (g, n, dy) => [sumTo(g, dy, g.type(n.inputs[0]).shape), sumTo(g, dy, g.type(n.inputs[1]).shape)],
});
