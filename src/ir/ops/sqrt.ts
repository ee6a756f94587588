import { defineOp } from '../op';
import { inferFloatUnary } from './_kinds';

export const sqrt = defineOp({
  name: 'sqrt',
  doc: 'square root',
  arity: 1,
  elementwise: true,
  infer: (t) => inferFloatUnary('sqrt', t),
  cpu: ({ tf }, [x]) => tf.sqrt(x),
  xla: (b, [x]) => b.unary('sqrt', x),
  vjp: (g, n, dy) => {
    const x = n.inputs[0];
    void x;
    return [g.op('div', [g.op('mul', [dy, g.constant(0.5, g.type(x).dtype)]), n.id])];
  },
});
