import { defineOp } from '../op';
import { inferFloatUnary } from './_kinds';

export const rsqrt = defineOp({
  name: 'rsqrt',
  doc: '1 / sqrt(x)',
  arity: 1,
  elementwise: true,
  infer: (t) => inferFloatUnary('rsqrt', t),
  cpu: ({ tf }, [x]) => tf.rsqrt(x),
  xla: (b, [x]) => b.unary('rsqrt', x),
  vjp: (g, n, dy) => {
    const x = n.inputs[0];
    void x;
    return [g.op('mul', [dy, g.op('mul', [g.constant(-0.5, g.type(x).dtype), g.op('mul', [n.id, g.op('mul', [n.id, n.id])])])])];
  },
});
