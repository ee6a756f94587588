import { defineOp } from '../op';
import { inferBinary, sumTo, xlaBinary } from './_kinds';

export const div = defineOp({
  name: 'div',
  doc: 'a / b (NumPy broadcasting)',
  arity: 2,
  elementwise: true,
  infer: (t) => inferBinary('div', t),
  cpu: ({ tf }, [a, b]) => (a.dtype === 'int32' ? tf.floorDiv(a, b) : tf.div(a, b)),
  xla: (b, ins, _n, out) => xlaBinary(b, 'divide', ins, out.shape),
  vjp: (g, n, dy) => {
    const [a, b] = n.inputs;
    const da = g.op('div', [dy, b]);
    // d(a/b)/db = -(a/b)/b, so db = -(dy/b) * out
    const db = g.op('neg', [g.op('mul', [da, n.id])]);
    return [sumTo(g, da, g.type(a).shape), sumTo(g, db, g.type(b).shape)];
  },
});
