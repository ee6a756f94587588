import { defineOp } from '../op';
import { DType, Shape } from '../types';

/** A learned tensor; `name` is the checkpoint name (scope path + local name). */
export const param = defineOp({
  name: 'param',
  doc: 'learned tensor, named as in the checkpoint',
  arity: 0,
  attrs: ['name', 'dtype', 'shape'],
  source: true,
  infer: (_, a) => ({ dtype: a.dtype as DType, shape: a.shape as Shape }),
});
