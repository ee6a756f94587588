/** Shape arithmetic shared by op rules: symbolic dims compare by name, numbers by value. */
import { Dim, DType, Shape, TensorType } from './types';

export class ShapeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ShapeError';
  }
}

export const fmtShape = (s: Shape): string => `[${s.join(', ')}]`;
export const fmtType = (t: TensorType): string => `${t.dtype}${fmtShape(t.shape)}`;

export function dimEq(a: Dim, b: Dim): boolean {
  return a === b;
}

export function shapeEq(a: Shape, b: Shape): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  // (a loop, not every(): compilers compare types of every node of large graphs)
  for (let i = 0; i < a.length; i++) if (!dimEq(a[i], b[i])) return false;
  return true;
}

export function typeEq(a: TensorType, b: TensorType): boolean {
  return a === b || (a.dtype === b.dtype && shapeEq(a.shape, b.shape));
}

/** Normalise a possibly negative axis against a rank. */
export function axisOf(axis: number, rank: number, what = 'axis'): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= rank) throw new ShapeError(`${what} ${axis} is out of range for rank ${rank}`);
  return a;
}

/** Dim `i` of `s` right-aligned to rank `n` (1 where `s` has fewer dims). */
const alignedDim = (s: Shape, i: number, n: number): Dim => (i < n - s.length ? 1 : s[i - (n - s.length)]);

/**
 * NumPy broadcasting of two shapes. When the result is one of the operands (equal shapes, or a scalar or
 * size-1 dims broadcast against a full shape: most cases) that operand is returned, not a copy: shapes are immutable.
 */
export function broadcastShapes(a: Shape, b: Shape): Shape {
  const n = Math.max(a.length, b.length);
  let isA = a.length === n;
  let isB = b.length === n;
  for (let i = 0; i < n && (isA || isB); i++) {
    const da = alignedDim(a, i, n);
    const db = alignedDim(b, i, n);
    if (dimEq(da, db)) continue;
    if (db === 1) isB = false;
    else if (da === 1) isA = false;
    else isA = isB = false; // not broadcastable: reported below
  }
  if (isA) return a;
  if (isB) return b;
  const out: Dim[] = [];
  for (let i = 0; i < n; i++) {
    const da = alignedDim(a, i, n);
    const db = alignedDim(b, i, n);
    if (dimEq(da, db) || db === 1) out.push(da);
    else if (da === 1) out.push(db);
    else throw new ShapeError(`shapes ${fmtShape(a)} and ${fmtShape(b)} do not broadcast (dim ${da} vs ${db})`);
  }
  return out;
}

export function isFloat(d: DType): boolean {
  return d === 'f32' || d === 'bf16' || d === 'f16';
}

export function isInt(d: DType): boolean {
  return d === 'i32' || d === 'i64';
}

export const BYTES: Record<DType, number> = { f32: 4, bf16: 2, f16: 2, i32: 4, i64: 8, bool: 1 };

/** Bindings of symbolic dims to sizes. */
export type DimEnv = { readonly [name: string]: number };

export function concreteDim(d: Dim, env: DimEnv): number {
  if (typeof d === 'number') return d;
  const v = env[d];
  if (v === undefined) throw new ShapeError(`symbolic dimension '${d}' has no size (bind it, e.g. --${d} N)`);
  return v;
}

export function concreteShape(s: Shape, env: DimEnv): number[] {
  return s.map((d) => concreteDim(d, env));
}

export function numel(s: readonly number[]): number {
  let n = 1;
  for (const d of s) n *= d;
  return n;
}

/** Product of dims when all are numbers; otherwise undefined. */
export function staticNumel(s: Shape): number | undefined {
  let n = 1;
  for (const d of s) {
    if (typeof d !== 'number') return undefined;
    n *= d;
  }
  return n;
}
