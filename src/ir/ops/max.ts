import { defineOp } from '../op';
import { inferBinary, sumTo, xlaBinary, zerosLike } from './_kinds';

export const max = defineOp({
  name: 'max',
  doc: 'elementwise maximum (NumPy broadcasting)',
  arity: 2,
  elementwise: true,
  infer: (t) => inferBinary('max', t),
  cpu: ({ tf }, [a, b]) => tf.maximum(a, b),
  xla: (b, ins, _n, out) => xlaBinary(b, 'maximum', ins, out.shape),
  vjp: (g, n, dy) => {
    const [a, b] = n.inputs;
    const takeA = g.op('compare', [a, b], { dir: 'ge' });
    const z = zerosLike(g, dy);
    return [
      sumTo(g, g.op('select', [takeA, dy, z]), g.type(a).shape),
      sumTo(g, g.op('select', [takeA, z, dy]), g.type(b).shape),
    ];
  },
});
