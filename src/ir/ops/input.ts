import { defineOp } from '../op';
import { DType, Shape } from '../types';

/** A graph input (token ids, positions, labels …), supplied by the caller at run time. */
export const input = defineOp({
  name: 'input',
  doc: 'graph input supplied at run time',
  arity: 0,
  attrs: ['name', 'dtype', 'shape'],
  source: true,
  infer: (_, a) => ({ dtype: a.dtype as DType, shape: a.shape as Shape }),
});
