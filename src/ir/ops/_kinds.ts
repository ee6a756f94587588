/** Shared type rules and derivative helpers used by the op files (not ops themselves). */
import { Attrs, DType, NodeId, Shape, TensorType } from '../types';
import { ShapeError, axisOf, broadcastShapes, fmtType, shapeEq, isFloat } from '../shape';
import type { GraphBuilder } from '../builder';
import { broadcastTo, XlaBuilder, XlaValue } from '../xla';

/** Same dtype, NumPy broadcasting. */
export function inferBinary(op: string, [a, b]: readonly TensorType[]): TensorType {
  if (a.dtype !== b.dtype) throw new ShapeError(`${op} needs operands of one dtype, got ${fmtType(a)} and ${fmtType(b)}`);
  const shape = broadcastShapes(a.shape, b.shape);
  // Mostly the result is an operand's own type: share it (types are immutable) instead of allocating one per node.
  return shape === a.shape ? a : shape === b.shape ? b : { dtype: a.dtype, shape };
}

export function inferFloatUnary(op: string, [x]: readonly TensorType[]): TensorType {
  if (!isFloat(x.dtype)) throw new ShapeError(`${op} needs a floating-point operand, got ${fmtType(x)}`);
  return x;
}

/** Broadcast both operands to the output shape, then apply an XLA binary op. */
export function xlaBinary(b: XlaBuilder, op: Parameters<XlaBuilder['binary']>[0], [x, y]: readonly XlaValue[], out: readonly number[]): XlaValue {
  return b.binary(op, broadcastTo(b, x, out), broadcastTo(b, y, out));
}

/** Sum a cotangent of a broadcast result back to an operand's shape. */
export function sumTo(g: GraphBuilder, dy: NodeId, target: Shape): NodeId {
  const s = g.type(dy).shape;
  if (shapeEq(s, target)) return dy;
  const off = s.length - target.length;
  const axes: number[] = [];
  s.forEach((d, i) => {
    if (i < off || (target[i - off] === 1 && d !== 1)) axes.push(i);
  });
  const r = axes.length ? g.op('reduce', [dy], { kind: 'sum', axes, keepdims: true }) : dy;
  return shapeEq(g.type(r).shape, target) ? r : g.op('reshape', [r], { shape: [...target] });
}

export const scalar = (g: GraphBuilder, v: number, dtype: DType = 'f32') => g.constant(v, dtype);

export function mul(g: GraphBuilder, a: NodeId, b: NodeId): NodeId {
  return g.op('mul', [a, b]);
}

export function normAxes(attrs: Attrs, rank: number, key = 'axes'): number[] {
  const v = attrs[key];
  const list = Array.isArray(v) ? (v as number[]) : [v as number];
  return list.map((a) => axisOf(a, rank));
}

export function zerosLike(g: GraphBuilder, id: NodeId): NodeId {
  const t = g.type(id);
  return g.constant(0, t.dtype, t.shape);
}
