import { defineOp } from '../op';
import { axisOf, isFloat, ShapeError, fmtType } from '../shape';

/** exp(x - max) / sum(exp(x - max)) along `axis`. */
export const softmax = defineOp({
  name: 'softmax',
  doc: 'softmax along an axis',
  arity: 1,
  attrs: ['axis'],
  infer: ([x], a) => {
    if (!isFloat(x.dtype)) throw new ShapeError(`softmax needs a float operand, got ${fmtType(x)}`);
    axisOf(a.axis as number, x.shape.length);
    return x;
  },
  cpu: ({ tf }, [x], n) => {
    const axis = axisOf(n.attrs.axis as number, x.rank);
    if (axis === x.rank - 1) return tf.softmax(x);
    const e = tf.exp(tf.sub(x, tf.max(x, axis, true)));
    return tf.div(e, tf.sum(e, axis, true));
  },
  xla: (b, [x], n) => {
    const shape = x.type.shape;
    const axis = axisOf(n.attrs.axis as number, shape.length);
    const keep = shape.map((_, i) => i).filter((i) => i !== axis);
    const m = b.broadcastInDim(b.reduce(x, [axis], 'max'), shape, keep);
    const e = b.unary('exponential', b.binary('subtract', x, m));
    const s = b.broadcastInDim(b.reduce(e, [axis], 'add'), shape, keep);
    return b.binary('divide', e, s);
  },
  vjp: (g, n, dy) => {
    // dx = y * (dy - sum(dy * y, axis))
    const axis = axisOf(n.attrs.axis as number, n.type.shape.length);
    const s = g.op('reduce', [g.op('mul', [dy, n.id])], { kind: 'sum', axes: [axis], keepdims: true });
    return [g.op('mul', [n.id, g.op('sub', [dy, s])])];
  },
});
