import { defineOp } from '../op';
import { ShapeError, axisOf, fmtShape } from '../shape';
import { Dim } from '../types';

/** x[..., start:end, ...] along one axis (static bounds). */
export const slice = defineOp({
  name: 'slice',
  doc: 'a contiguous range along one axis',
  arity: 1,
  attrs: ['axis', 'start', 'end'],
  infer: ([x], a) => {
    const axis = axisOf(a.axis as number, x.shape.length);
    const d = x.shape[axis];
    const start = a.start as number;
    const end = a.end as number;
    if (typeof d !== 'number') throw new ShapeError(`slice along symbolic dimension '${d}' is not supported`);
    if (!(Number.isInteger(start) && Number.isInteger(end) && 0 <= start && start <= end && end <= d)) {
      throw new ShapeError(`slice ${start}:${end} is out of range for axis ${axis} of ${fmtShape(x.shape)}`);
    }
    const shape: Dim[] = [...x.shape];
    shape[axis] = end - start;
    return { dtype: x.dtype, shape };
  },
  cpu: ({ tf }, [x], n) => {
    const axis = axisOf(n.attrs.axis as number, x.rank);
    const begin = x.shape.map((_, i) => (i === axis ? (n.attrs.start as number) : 0));
    const size = x.shape.map((d, i) => (i === axis ? (n.attrs.end as number) - (n.attrs.start as number) : d));
    return tf.slice(x, begin, size);
  },
  xla: (b, [x], n) => {
    const axis = axisOf(n.attrs.axis as number, x.type.shape.length);
    const start = x.type.shape.map((_, i) => (i === axis ? (n.attrs.start as number) : 0));
    const limit = x.type.shape.map((d, i) => (i === axis ? (n.attrs.end as number) : d));
    return b.slice(x, start, limit);
  },
  cost: () => ({ flops: 0, transcendentals: 0 }),
  vjp: (g, n, dy) => {
    const xt = g.type(n.inputs[0]);
    const axis = axisOf(n.attrs.axis as number, xt.shape.length);
    const d = xt.shape[axis] as number;
    const [s, e] = [n.attrs.start as number, n.attrs.end as number];
    const parts: number[] = [];
    const zeros = (len: number) => g.constant(0, xt.dtype, xt.shape.map((x, i) => (i === axis ? len : x)));
    if (s > 0) parts.push(zeros(s));
    parts.push(dy);
    if (e < d) parts.push(zeros(d - e));
    return [parts.length === 1 ? dy : g.op('concat', parts, { axis })];
  },
});
