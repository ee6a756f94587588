/**
 * The XLA builder interface that op definitions lower onto. It mirrors XLA's own op set (StableHLO / HLO);
 * the TPU backend implements it twice — a StableHLO MLIR printer and an HLO text printer — so an op's
 * lowering is written once. Shapes here are concrete.
 */
import { DType } from './types';

export interface XlaType {
  readonly dtype: DType;
  readonly shape: readonly number[];
}

export interface XlaValue {
  readonly ref: string;
  readonly type: XlaType;
}

export type XlaUnary =
  | 'negate' | 'exponential' | 'log' | 'tanh' | 'rsqrt' | 'sqrt' | 'sine' | 'cosine' | 'abs' | 'logistic' | 'not';
export type XlaBinary =
  | 'add' | 'subtract' | 'multiply' | 'divide' | 'maximum' | 'minimum' | 'power' | 'and' | 'or' | 'remainder';
export type XlaCompare = 'EQ' | 'NE' | 'LT' | 'LE' | 'GT' | 'GE';
export type XlaReducer = 'add' | 'max' | 'min' | 'mul';

export interface DotDims {
  readonly lhsBatch: readonly number[];
  readonly rhsBatch: readonly number[];
  readonly lhsContract: readonly number[];
  readonly rhsContract: readonly number[];
}

export interface GatherDims {
  readonly offsetDims: readonly number[];
  readonly collapsedSliceDims: readonly number[];
  readonly startIndexMap: readonly number[];
  readonly indexVectorDim: number;
  readonly sliceSizes: readonly number[];
}

export interface XlaBuilder {
  constant(value: number, type: XlaType): XlaValue;
  iota(type: XlaType, dim: number): XlaValue;
  unary(op: XlaUnary, x: XlaValue): XlaValue;
  /** Operands must already have the same shape (use broadcastTo). */
  binary(op: XlaBinary, a: XlaValue, b: XlaValue): XlaValue;
  compare(dir: XlaCompare, a: XlaValue, b: XlaValue): XlaValue;
  select(pred: XlaValue, onTrue: XlaValue, onFalse: XlaValue): XlaValue;
  convert(x: XlaValue, dtype: DType): XlaValue;
  dot(a: XlaValue, b: XlaValue, dims: DotDims): XlaValue;
  reduce(x: XlaValue, dims: readonly number[], reducer: XlaReducer): XlaValue;
  reshape(x: XlaValue, shape: readonly number[]): XlaValue;
  transpose(x: XlaValue, perm: readonly number[]): XlaValue;
  /** broadcast_in_dim: operand dim i maps to output dim dims[i]. */
  broadcastInDim(x: XlaValue, shape: readonly number[], dims: readonly number[]): XlaValue;
  slice(x: XlaValue, start: readonly number[], limit: readonly number[], strides?: readonly number[]): XlaValue;
  concatenate(xs: readonly XlaValue[], dim: number): XlaValue;
  gather(operand: XlaValue, indices: XlaValue, dims: GatherDims, outShape: readonly number[]): XlaValue;
  /**
   * dynamic_update_slice: `operand` with `update` written at `starts` (one i32 scalar per dim; XLA clamps each
   * start to [0, operand dim − update dim]). In place in XLA (the operand's buffer is reused).
   */
  dynamicUpdateSlice(operand: XlaValue, update: XlaValue, starts: readonly XlaValue[]): XlaValue;
}

/** NumPy-style broadcast of `x` to `shape`, expressed with XLA's explicit ops. */
export function broadcastTo(b: XlaBuilder, x: XlaValue, shape: readonly number[]): XlaValue {
  const xs = x.type.shape;
  if (xs.length === shape.length && xs.every((d, i) => d === shape[i])) return x;
  const off = shape.length - xs.length;
  // Drop size-1 dims that get expanded, then broadcast_in_dim the rest.
  const keep: number[] = [];
  const kept: number[] = [];
  xs.forEach((d, i) => {
    if (d === shape[i + off]) {
      keep.push(i + off);
      kept.push(d);
    }
  });
  const squeezed = kept.length === xs.length ? x : b.reshape(x, kept);
  return b.broadcastInDim(squeezed, shape, keep);
}
