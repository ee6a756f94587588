import { defineOp } from '../op';
import { DType, Shape } from '../types';
import { axisOf, concreteShape } from '../shape';

/** Index along `axis` over `shape` (0, 1, 2 … broadcast over the other axes). */
export const iota = defineOp({
  name: 'iota',
  doc: 'indices along an axis',
  arity: 0,
  attrs: ['shape', 'axis', 'dtype'],
  infer: (_, a) => {
    const shape = a.shape as Shape;
    axisOf(a.axis as number, shape.length);
    return { dtype: a.dtype as DType, shape };
  },
  cpu: ({ tf, env }, _, n) => {
    const shape = concreteShape(n.type.shape, env);
    const axis = n.attrs.axis as number;
    const dtype = n.type.dtype === 'f32' || n.type.dtype === 'bf16' || n.type.dtype === 'f16' ? 'float32' : 'int32';
    const r = tf.range(0, shape[axis], 1, dtype);
    const view = shape.map((d, i) => (i === axis ? d : 1));
    return tf.tidy(() => tf.broadcastTo(tf.reshape(r, view), shape));
  },
  xla: (b, _, n, out) => b.iota(out, n.attrs.axis as number),
  cost: () => ({ flops: 0, transcendentals: 0 }),
});
