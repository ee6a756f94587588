import { defineOp } from '../op';
import { inferBinary, sumTo, xlaBinary } from './_kinds';

export const div = defineOp({
  name: 'div',
  doc: 'a / b (NumPy broadcasting)',
  arity: 2,
  elementwise: true,
  infer: (t) => inferBinary('div', t),
  // Integer division truncates toward zero, as XLA's `divide` does (floorDiv rounds down: correct it).
  cpu: ({ tf }, [a, b]) => {
    if (a.dtype !== 'int32') return tf.div(a, b);
    const q = tf.floorDiv(a, b);
    const inexact = tf.notEqual(tf.sub(a, tf.mul(q, b)), 0);
    const oppositeSigns = tf.notEqual(tf.less(a, 0), tf.less(b, 0));
    return tf.add(q, tf.cast(tf.logicalAnd(inexact, oppositeSigns), 'int32'));
  },
  xla: (b, ins, _n, out) => xlaBinary(b, 'divide', ins, out.shape),
  vjp: (g, n, dy) => {
    const [a, b] = n.inputs;
    const da = g.op('div', [dy, b]);
    // d(a/b)/db = -(a/b)/b, so db = -(dy/b) * out
    const db = g.op('neg', [g.op('mul', [da, n.id])]);
    return [sumTo(g, da, g.type(a).shape), sumTo(g, db, g.type(b).shape)];
  },
});
