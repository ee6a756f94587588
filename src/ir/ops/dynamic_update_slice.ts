import { defineOp } from '../op';
import { ShapeError, axisOf, dimEq, fmtType } from '../shape';
import { bytesOf } from '../cost';

/**
 * dynamic_update_slice(x, update, index) — `x` with `update` written at position `index` (an i32 scalar known
 * only at run time) along `axis`; every other dim of `update` equals x's. As in XLA, the position is clamped to
 * [0, x.shape[axis] − update.shape[axis]]. This is how a decode step writes the new token's keys and values
 * into a fixed-size KV cache; XLA updates the buffer in place, so its cost is the update, not the cache
 * (HloCostAnalysis: 2 × update bytes + its first start index, 4 bytes; no flops).
 */
export const dynamicUpdateSlice = defineOp({
  name: 'dynamic_update_slice',
  doc: 'write a block into a tensor at a run-time position along one axis (in place)',
  arity: 3,
  attrs: ['axis'],
  infer: ([x, u, i], a) => {
    const axis = axisOf(a.axis as number, x.shape.length);
    if (u.dtype !== x.dtype) throw new ShapeError(`dynamic_update_slice: update ${fmtType(u)} and operand ${fmtType(x)} differ in dtype`);
    if (u.shape.length !== x.shape.length || !x.shape.every((d, k) => k === axis || dimEq(d, u.shape[k]))) {
      throw new ShapeError(`dynamic_update_slice: update ${fmtType(u)} must match operand ${fmtType(x)} except along axis ${axis}`);
    }
    const [dx, du] = [x.shape[axis], u.shape[axis]];
    if (typeof dx === 'number' && typeof du === 'number' && du > dx) throw new ShapeError(`dynamic_update_slice: update ${fmtType(u)} is longer than operand ${fmtType(x)} along axis ${axis}`);
    if (i.shape.length !== 0 || (i.dtype !== 'i32' && i.dtype !== 'i64')) throw new ShapeError(`dynamic_update_slice: the position must be an integer scalar, got ${fmtType(i)}`);
    return x;
  },
  cpu: ({ tf }, [x, u, i], n) => {
    const axis = axisOf(n.attrs.axis as number, x.rank);
    const [D, U] = [x.shape[axis], u.shape[axis]];
    const at = Math.min(Math.max(Math.trunc(i.dataSync()[0]), 0), D - U);
    const size = (len: number) => x.shape.map((d, k) => (k === axis ? len : d));
    const begin = (pos: number) => x.shape.map((_, k) => (k === axis ? pos : 0));
    const parts = [];
    if (at > 0) parts.push(tf.slice(x, begin(0), size(at)));
    parts.push(u);
    if (at + U < D) parts.push(tf.slice(x, begin(at + U), size(D - at - U)));
    return parts.length === 1 ? tf.clone(u) : tf.concat(parts, axis);
  },
  xla: (b, [x, u, i], n) => {
    const axis = axisOf(n.attrs.axis as number, x.type.shape.length);
    const pos = i.type.dtype === 'i32' ? i : b.convert(i, 'i32');
    const zero = b.constant(0, { dtype: 'i32', shape: [] });
    return b.dynamicUpdateSlice(x, u, x.type.shape.map((_, k) => (k === axis ? pos : zero)));
  },
  cost: ({ ins }) => ({ flops: 0, transcendentals: 0, bytes: 2 * bytesOf(ins[1]) + 4 }),
});
