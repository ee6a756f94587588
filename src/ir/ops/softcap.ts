import { defineOp } from '../op';
import { ShapeError } from '../shape';
import { inferFloatUnary } from './_kinds';

/**
 * Soft-capping: cap * tanh(x / cap), elementwise (Gemma 2's attention-score and final-logit caps).
 * The attribute `cap` is a positive number. Computed in exactly the order of the primitive form
 * (divide, tanh, multiply) so that folding `c * tanh(x / c)` into this op changes no bit on CPU.
 */
export const softcap = defineOp({
  name: 'softcap',
  doc: 'cap * tanh(x / cap)',
  arity: 1,
  attrs: ['cap'],
  elementwise: true,
  infer: (t, a) => {
    const cap = a.cap;
    if (typeof cap !== 'number' || !(cap > 0) || !Number.isFinite(cap)) throw new ShapeError(`softcap needs a positive finite 'cap', got ${JSON.stringify(cap)}`);
    return inferFloatUnary('softcap', t);
  },
  cpu: ({ tf }, [x], n) => {
    const cap = n.attrs.cap as number;
    return tf.mul(tf.tanh(tf.div(x, cap)), cap);
  },
  xla: (b, [x], n) => {
    const c = b.constant(n.attrs.cap as number, x.type);
    return b.binary('multiply', b.unary('tanh', b.binary('divide', x, c)), c);
  },
  vjp: (g, n, dy) => {
    // d/dx cap·tanh(x/cap) = 1 - tanh² = 1 - (y/cap)²
    const dt = n.type.dtype;
    const r = g.op('div', [n.id, g.constant(n.attrs.cap as number, dt)]);
    return [g.op('mul', [dy, g.op('sub', [g.constant(1, dt), g.op('mul', [r, r])])])];
  },
});
