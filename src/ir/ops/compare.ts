import { defineOp } from '../op';
import { ShapeError, broadcastShapes, fmtType } from '../shape';
import { broadcastTo, XlaCompare } from '../xla';

const DIRS: Record<string, XlaCompare> = { lt: 'LT', le: 'LE', gt: 'GT', ge: 'GE', eq: 'EQ', ne: 'NE' };

/** Elementwise comparison → bool; `dir` is lt, le, gt, ge, eq or ne. */
export const compare = defineOp({
  name: 'compare',
  doc: 'elementwise comparison (dir = lt|le|gt|ge|eq|ne) giving bool',
  arity: 2,
  attrs: ['dir'],
  elementwise: true,
  infer: ([a, b], at) => {
    if (!(String(at.dir) in DIRS)) throw new ShapeError(`compare: unknown direction '${String(at.dir)}'`);
    if (a.dtype !== b.dtype) throw new ShapeError(`compare needs operands of one dtype, got ${fmtType(a)} and ${fmtType(b)}`);
    return { dtype: 'bool', shape: broadcastShapes(a.shape, b.shape) };
  },
  cpu: ({ tf }, [a, b], n) => {
    switch (n.attrs.dir) {
      case 'lt': return tf.less(a, b);
      case 'le': return tf.lessEqual(a, b);
      case 'gt': return tf.greater(a, b);
      case 'ge': return tf.greaterEqual(a, b);
      case 'eq': return tf.equal(a, b);
      default: return tf.notEqual(a, b);
    }
  },
  xla: (b, [x, y], n, out) => b.compare(DIRS[String(n.attrs.dir)], broadcastTo(b, x, out.shape), broadcastTo(b, y, out.shape)),
  vjp: () => [null, null],
});
