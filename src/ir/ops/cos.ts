import { defineOp } from '../op';
import { inferFloatUnary } from './_kinds';

export const cos = defineOp({
  name: 'cos',
  doc: 'cosine',
  arity: 1,
  elementwise: true,
  infer: (t) => inferFloatUnary('cos', t),
  cpu: ({ tf }, [x]) => tf.cos(x),
  xla: (b, [x]) => b.unary('cosine', x),
  vjp: (g, n, dy) => {
    const x = n.inputs[0];
    void x;
    return [g.op('neg', [g.op('mul', [dy, g.op('sin', [x])])])];
  },
});
