import { defineOp } from '../op';
import { DType } from '../types';
import { isFloat } from '../shape';

const tfDtype = (d: DType) => (d === 'bool' ? 'bool' : d === 'i32' || d === 'i64' ? 'int32' : 'float32');

/** Convert to another dtype (float → int truncates toward zero, as XLA's convert). */
export const cast = defineOp({
  name: 'cast',
  doc: 'convert to dtype',
  arity: 1,
  attrs: ['dtype'],
  elementwise: true,
  infer: ([x], a) => ({ dtype: a.dtype as DType, shape: x.shape }),
  cpu: ({ tf }, [x], n) => tf.cast(x, tfDtype(n.type.dtype)),
  xla: (b, [x], n) => b.convert(x, n.attrs.dtype as DType),
  vjp: (g, n, dy) => {
    const src = g.type(n.inputs[0]).dtype;
    return [isFloat(src) && isFloat(n.type.dtype) ? g.op('cast', [dy], { dtype: src }) : null];
  },
});
