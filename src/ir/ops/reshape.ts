import { defineOp } from '../op';
import { ShapeError, concreteShape, fmtShape } from '../shape';
import { Dim, Shape } from '../types';

function signature(s: Shape): [number, string] {
  let n = 1;
  const syms: string[] = [];
  for (const d of s) typeof d === 'number' ? (n *= d) : syms.push(d);
  return [n, syms.sort().join('*')];
}

/** Same elements, new shape (symbolic dims must be carried over; their product must match). */
export const reshape = defineOp({
  name: 'reshape',
  doc: 'same elements, new shape',
  arity: 1,
  attrs: ['shape'],
  infer: ([x], a) => {
    const shape = a.shape as Dim[];
    const [n1, s1] = signature(x.shape);
    const [n2, s2] = signature(shape);
    if (n1 !== n2 || s1 !== s2) throw new ShapeError(`cannot reshape ${fmtShape(x.shape)} to ${fmtShape(shape)}`);
    return { dtype: x.dtype, shape };
  },
  cpu: ({ tf, env }, [x], n) => tf.reshape(x, concreteShape(n.type.shape, env)),
  xla: (b, [x], _n, out) => b.reshape(x, out.shape),
  cost: () => ({ flops: 0, transcendentals: 0 }),
  vjp: (g, n, dy) => [g.op('reshape', [dy], { shape: [...g.type(n.inputs[0]).shape] })],
});
