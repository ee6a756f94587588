import { defineOp } from '../op';
import { ShapeError, broadcastShapes, concreteShape, fmtShape, shapeEq } from '../shape';
import { Dim } from '../types';
import { broadcastTo } from '../xla';
import { sumTo } from './_kinds';

/** NumPy broadcast_to. */
export const broadcast = defineOp({
  name: 'broadcast',
  doc: 'broadcast to a shape (NumPy rules)',
  arity: 1,
  attrs: ['shape'],
  infer: ([x], a) => {
    const shape = a.shape as Dim[];
    let ok = shape.length >= x.shape.length;
    if (ok) {
      try {
        ok = shapeEq(broadcastShapes(x.shape, shape), shape);
      } catch {
        ok = false;
      }
    }
    if (!ok) throw new ShapeError(`cannot broadcast ${fmtShape(x.shape)} to ${fmtShape(shape)}`);
    return { dtype: x.dtype, shape };
  },
  cpu: ({ tf, env }, [x], n) => tf.broadcastTo(x, concreteShape(n.type.shape, env)),
  xla: (b, [x], _n, out) => broadcastTo(b, x, out.shape),
  cost: () => ({ flops: 0, transcendentals: 0 }),
  vjp: (g, n, dy) => [sumTo(g, dy, g.type(n.inputs[0]).shape)],
});
