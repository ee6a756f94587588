import { defineOp } from '../op';
import { inferBinary, sumTo, xlaBinary } from './_kinds';

export const pow = defineOp({
  name: 'pow',
  doc: 'a ** b (NumPy broadcasting)',
  arity: 2,
  elementwise: true,
  infer: (t) => inferBinary('pow', t),
  cpu: ({ tf }, [a, b]) => tf.pow(a, b),
  xla: (b, ins, _n, out) => xlaBinary(b, 'power', ins, out.shape),
  vjp: (g, n, dy) => {
    const [a, b] = n.inputs;
    // d/da a^b = b * a^(b-1);  d/db a^b = a^b * log(a)
    const bm1 = g.op('sub', [b, g.constant(1, g.type(b).dtype)]);
    const da = g.op('mul', [dy, g.op('mul', [b, g.op('pow', [a, bm1])])]);
    const db = g.op('mul', [dy, g.op('mul', [n.id, g.op('log', [a])])]);
    return [sumTo(g, da, g.type(a).shape), sumTo(g, db, g.type(b).shape)];
  },
});
