import { defineOp } from '../op';
import { inferFloatUnary } from './_kinds';

export const sin = defineOp({
  name: 'sin',
  doc: 'sine',
  arity: 1,
  elementwise: true,
  infer: (t) => inferFloatUnary('sin', t),
  cpu: ({ tf }, [x]) => tf.sin(x),
  xla: (b, [x]) => b.unary('sine', x),
  vjp: (g, n, dy) => {
    const x = n.inputs[0];
    void x;
    return [g.op('mul', [dy, g.op('cos', [x])])];
  },
});
