import { defineOp } from '../op';
import { DType, Shape } from '../types';
import { decodeNumber } from '../builder';
import { concreteShape } from '../shape';

const tfDtype = (d: DType) => (d === 'bool' ? 'bool' : d === 'i32' || d === 'i64' ? 'int32' : 'float32');

/** A scalar, or one value splatted over a shape. */
export const constant = defineOp({
  name: 'constant',
  doc: 'a scalar, or one value splatted over a shape',
  arity: 0,
  attrs: ['value', 'dtype', 'shape'],
  infer: (_, a) => ({ dtype: a.dtype as DType, shape: a.shape as Shape }),
  cpu: ({ tf, env }, _, n) => {
    const v = decodeNumber(n.attrs.value);
    const shape = concreteShape(n.type.shape, env);
    return shape.length ? tf.fill(shape, v, tfDtype(n.type.dtype)) : tf.scalar(v, tfDtype(n.type.dtype));
  },
  xla: (b, _, n, out) => b.constant(decodeNumber(n.attrs.value), out),
  cost: () => ({ flops: 0, transcendentals: 0, bytes: 0 }),
});
