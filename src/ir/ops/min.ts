import { defineOp } from '../op';
import { inferBinary, sumTo, xlaBinary, zerosLike } from './_kinds';

export const min = defineOp({
  name: 'min',
  doc: 'elementwise minimum (NumPy broadcasting)',
  arity: 2,
  elementwise: true,
  infer: (t) => inferBinary('min', t),
  cpu: ({ tf }, [a, b]) => tf.minimum(a, b),
  xla: (b, ins, _n, out) => xlaBinary(b, 'minimum', ins, out.shape),
  vjp: (g, n, dy) => {
    const [a, b] = n.inputs;
    const takeA = g.op('compare', [a, b], { dir: 'le' });
    const z = zerosLike(g, dy);
    return [
      sumTo(g, g.op('select', [takeA, dy, z]), g.type(a).shape),
      sumTo(g, g.op('select', [takeA, z, dy]), g.type(b).shape),
    ];
  },
});
