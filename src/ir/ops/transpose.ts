import { defineOp } from '../op';
import { ShapeError } from '../shape';

/** Permute axes: output axis i is input axis perm[i]. */
export const transpose = defineOp({
  name: 'transpose',
  doc: 'permute axes',
  arity: 1,
  attrs: ['perm'],
  infer: ([x], a) => {
    const perm = a.perm as number[];
    const r = x.shape.length;
    if (perm.length !== r || [...perm].sort((p, q) => p - q).some((p, i) => p !== i)) {
      throw new ShapeError(`transpose: [${perm.join(', ')}] is not a permutation of ${r} axes`);
    }
    return { dtype: x.dtype, shape: perm.map((p) => x.shape[p]) };
  },
  cpu: ({ tf }, [x], n) => tf.transpose(x, n.attrs.perm as number[]),
  xla: (b, [x], n) => b.transpose(x, n.attrs.perm as number[]),
  cost: () => ({ flops: 0, transcendentals: 0 }),
  vjp: (g, n, dy) => {
    const perm = n.attrs.perm as number[];
    const inv = perm.map((_, i) => perm.indexOf(i));
    return [g.op('transpose', [dy], { perm: inv })];
  },
});
