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
  // A cast to a float type converts to the node's type in the program, which a program-wide float dtype (bf16 on a
  // TPU) may override: in a bf16 training step, the f32 master weights' cast back to the weights is to bf16, and a
  // 0/1 mask cast from a comparison of activations is made in bf16 directly (index arithmetic stays f32).
  // A cast to the type it already has is no instruction (XLA drops it too, and would not count it).
  xla: (b, [x], n, out) => {
    const to = isFloat(n.attrs.dtype as DType) ? out.dtype : (n.attrs.dtype as DType);
    return to === x.type.dtype ? x : b.convert(x, to);
  },
  vjp: (g, n, dy) => {
    const src = g.type(n.inputs[0]).dtype;
    return [isFloat(src) && isFloat(n.type.dtype) ? g.op('cast', [dy], { dtype: src }) : null];
  },
});
