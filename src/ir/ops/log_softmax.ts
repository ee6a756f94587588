import { defineOp } from '../op';
import { axisOf, isFloat, ShapeError, fmtType } from '../shape';

/** log(softmax(x)) along `axis`, computed stably as x - max - log(sum(exp(x - max))). */
export const log_softmax = defineOp({
  name: 'log_softmax',
  doc: 'log of the softmax along an axis (numerically stable)',
  arity: 1,
  attrs: ['axis'],
  infer: ([x], a) => {
    if (!isFloat(x.dtype)) throw new ShapeError(`log_softmax needs a float operand, got ${fmtType(x)}`);
    axisOf(a.axis as number, x.shape.length);
    return x;
  },
  cpu: ({ tf }, [x], n) => {
    const axis = axisOf(n.attrs.axis as number, x.rank);
    if (axis === x.rank - 1) return tf.logSoftmax(x);
    const s = tf.sub(x, tf.max(x, axis, true));
    return tf.sub(s, tf.log(tf.sum(tf.exp(s), axis, true)));
  },
  xla: (b, [x], n) => {
    const shape = x.type.shape;
    const axis = axisOf(n.attrs.axis as number, shape.length);
    const keep = shape.map((_, i) => i).filter((i) => i !== axis);
    const s = b.binary('subtract', x, b.broadcastInDim(b.reduce(x, [axis], 'max'), shape, keep));
    const lse = b.unary('log', b.reduce(b.unary('exponential', s), [axis], 'add'));
    return b.binary('subtract', s, b.broadcastInDim(lse, shape, keep));
  },
  vjp: (g, n, dy) => {
    // dx = dy - softmax(x) * sum(dy, axis), softmax(x) = exp(out)
    const axis = axisOf(n.attrs.axis as number, n.type.shape.length);
    const s = g.op('reduce', [dy], { kind: 'sum', axes: [axis], keepdims: true });
    return [g.op('sub', [dy, g.op('mul', [g.op('exp', [n.id]), s])])];
  },
});
