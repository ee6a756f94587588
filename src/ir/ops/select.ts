import { defineOp } from '../op';
import { ShapeError, broadcastShapes, fmtType, concreteShape } from '../shape';
import { broadcastTo } from '../xla';
import { sumTo, zerosLike } from './_kinds';
import { broadcastCpu } from './broadcast';

/** select(cond, a, b): a where cond, else b (NumPy broadcasting over all three). */
export const select = defineOp({
  name: 'select',
  doc: 'a where cond else b',
  arity: 3,
  elementwise: true,
  infer: ([c, a, b]) => {
    if (c.dtype !== 'bool') throw new ShapeError(`select needs a bool condition, got ${fmtType(c)}`);
    if (a.dtype !== b.dtype) throw new ShapeError(`select needs branches of one dtype, got ${fmtType(a)} and ${fmtType(b)}`);
    return { dtype: a.dtype, shape: broadcastShapes(c.shape, broadcastShapes(a.shape, b.shape)) };
  },
  cpu: ({ tf, env }, [c, a, b], n) => {
    const s = concreteShape(n.type.shape, env);
    return tf.where(broadcastCpu(tf, c, s), broadcastCpu(tf, a, s), broadcastCpu(tf, b, s));
  },
  xla: (b, [c, x, y], _n, out) => b.select(broadcastTo(b, c, out.shape), broadcastTo(b, x, out.shape), broadcastTo(b, y, out.shape)),
  vjp: (g, n, dy) => {
    const [c, a, b] = n.inputs;
    const z = zerosLike(g, dy);
    return [null, sumTo(g, g.op('select', [c, dy, z]), g.type(a).shape), sumTo(g, g.op('select', [c, z, dy]), g.type(b).shape)];
  },
});
