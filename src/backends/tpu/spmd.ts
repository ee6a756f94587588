/**
 * What the TPU backend's emitters add to the IR's `XlaBuilder`: program arguments and results, and the
 * operations an SPMD-partitioned program needs (collectives with replica groups, partition ids, dynamic
 * slices). The StableHLO printer, the HLO printer and the cost recorder all implement it.
 */
import { DType } from '../../ir/types';
import type { Spec } from './mesh';
import { DotDims, GatherDims, XlaBinary, XlaBuilder, XlaCompare, XlaReducer, XlaType, XlaUnary, XlaValue } from '../../ir/xla';

export interface ReplicaGroupSet {
  /** Mesh axes the collective runs over (major to minor). */
  readonly axes: readonly string[];
  /** Explicit groups of flattened device ids. */
  readonly groups: readonly (readonly number[])[];
  /** XLA's iota form of the same groups, e.g. `[768,8]<=[6144]`. */
  readonly iota: string;
}

export interface ArgInfo {
  readonly name: string;
  /** HLO sharding string for the whole-program form (`mhlo.sharding`), if any. */
  readonly sharding?: string;
  /** Position in the program's signature (arguments may be created in any order, e.g. at first use). */
  readonly index?: number;
  /** How the argument is split over the mesh (per-device programs; the simulator cuts its inputs by it). */
  readonly spec?: Spec;
}

export interface SpmdEmitter extends XlaBuilder {
  arg(type: XlaType, info: ArgInfo): XlaValue;
  allGather(x: XlaValue, dim: number, g: ReplicaGroupSet): XlaValue;
  allReduce(x: XlaValue, g: ReplicaGroupSet, reducer: XlaReducer): XlaValue;
  reduceScatter(x: XlaValue, dim: number, g: ReplicaGroupSet): XlaValue;
  allToAll(x: XlaValue, splitDim: number, concatDim: number, g: ReplicaGroupSet): XlaValue;
  /** The partition (device) id as an i32 scalar. */
  partitionId(): XlaValue;
  dynamicSlice(x: XlaValue, starts: readonly XlaValue[], sizes: readonly number[]): XlaValue;
  /** Attribute the following instructions to an IR node (names, scopes, cost attribution). */
  setOrigin(origin: InstrOrigin): void;
}

export interface ModuleOptions {
  readonly name: string;
  readonly numPartitions: number;
  /** `HIGHEST` makes matmuls exact fp32 on GPUs (TF32 otherwise). */
  readonly precision?: 'DEFAULT' | 'HIGHEST';
  /** Per-device programs: mark arguments, results and partition ids `{manual}` so XLA's SPMD pipeline leaves them as written. */
  readonly manual?: boolean;
}

export interface Output {
  readonly value: XlaValue;
  readonly name: string;
  readonly sharding?: string;
}

/** Result types of the XLA ops, shared by every emitter. */
export const resultType = {
  dot(a: XlaType, b: XlaType, d: DotDims): XlaType {
    const batch = d.lhsBatch.map((i) => a.shape[i]);
    const lf = a.shape.filter((_, i) => !d.lhsBatch.includes(i) && !d.lhsContract.includes(i));
    const rf = b.shape.filter((_, i) => !d.rhsBatch.includes(i) && !d.rhsContract.includes(i));
    return { dtype: a.dtype, shape: [...batch, ...lf, ...rf] };
  },
  reduce(x: XlaType, dims: readonly number[]): XlaType {
    return { dtype: x.dtype, shape: x.shape.filter((_, i) => !dims.includes(i)) };
  },
  slice(x: XlaType, start: readonly number[], limit: readonly number[], strides?: readonly number[]): XlaType {
    return { dtype: x.dtype, shape: start.map((s, i) => Math.ceil((limit[i] - s) / (strides?.[i] ?? 1))) };
  },
  concat(xs: readonly XlaType[], dim: number): XlaType {
    const shape = [...xs[0].shape];
    shape[dim] = xs.reduce((a, x) => a + x.shape[dim], 0);
    return { dtype: xs[0].dtype, shape };
  },
  gathered(x: XlaType, dim: number, k: number): XlaType {
    const shape = [...x.shape];
    shape[dim] *= k;
    return { dtype: x.dtype, shape };
  },
  scattered(x: XlaType, dim: number, k: number): XlaType {
    const shape = [...x.shape];
    if (shape[dim] % k !== 0) throw new Error(`reduce-scatter: dim ${dim} of [${shape}] is not divisible by ${k}`);
    shape[dim] /= k;
    return { dtype: x.dtype, shape };
  },
  allToAll(x: XlaType, split: number, concat: number, k: number): XlaType {
    const shape = [...x.shape];
    shape[split] /= k;
    shape[concat] *= k;
    return { dtype: x.dtype, shape };
  },
  withDtype(x: XlaType, dtype: DType): XlaType {
    return { dtype, shape: x.shape };
  },
};

/** Neutral element of a reducer (the init value of reduce / all-reduce computations). */
export function reducerInit(r: XlaReducer, dtype: DType): number {
  const int = dtype === 'i32' || dtype === 'i64';
  if (r === 'add') return 0;
  if (r === 'mul') return 1;
  if (r === 'max') return int ? -2147483648 : -Infinity;
  return int ? 2147483647 : Infinity;
}

/** The IR node an emitter attributes its next instructions to. */
export type InstrOrigin = { readonly id: number; readonly op: string; readonly scope: string; readonly name?: string } | undefined;

/** Where a block's instructions came from: the node position of each, the origin of each position, the type of each. */
export interface BlockSource {
  readonly pos: Int32Array;
  readonly origins: readonly InstrOrigin[];
  readonly types: readonly XlaType[];
}

/**
 * An emitter that can take a run of instructions it recorded before again as one block (segment replay): the
 * instructions from `blockStart()`'s mark to now, which read from outside only `inputs`, become a block; a block
 * can then be repeated with other inputs (of the same types and aliasing), each instruction located at `originAt`
 * its node position, without the instructions being sent one by one. The repeat's values come by instruction index.
 */
export interface BlockSink {
  blockStart(): unknown;
  makeBlock(mark: unknown, inputs: readonly XlaValue[], src: BlockSource): unknown;
  /** Whether `repeatBlock` would take it (nothing is recorded either way). */
  canRepeatBlock(block: unknown, inputs: readonly XlaValue[], prefix: string): boolean;
  repeatBlock(block: unknown, inputs: readonly XlaValue[], prefix: string, originAt: (pos: number) => InstrOrigin): (k: number) => XlaValue;
}

export const isBlockSink = (e: unknown): e is SpmdEmitter & BlockSink => typeof (e as Partial<BlockSink>).repeatBlock === 'function';
/** (a tee's sinks are all block sinks once `blockStart` gave a mark) */
const blockSink = (e: SpmdEmitter): BlockSink => e as unknown as BlockSink;

type Values = readonly XlaValue[];
/** A value of a `TeeEmitter`: one value per sink (its text `%tN` is made only if something reads `ref`). */
class TeeValue implements XlaValue {
  constructor(readonly index: number, readonly parts: Values) {}
  get type(): XlaType {
    return this.parts[0].type;
  }
  get ref(): string {
    return `%t${this.index}`;
  }
}

/**
 * Forwards every instruction to several emitters at once (cost recorder, StableHLO printer, HLO printer), so
 * one partitioning pass yields the cost plan and both per-device programs.
 */
export class TeeEmitter implements SpmdEmitter, BlockSink {
  private n = 0;
  constructor(readonly sinks: readonly SpmdEmitter[]) {}

  /** A block of every sink, when every sink takes blocks. */
  blockStart(): unknown {
    return this.sinks.every(isBlockSink) ? this.sinks.map((s) => blockSink(s).blockStart()) : undefined;
  }
  makeBlock(mark: unknown, inputs: readonly XlaValue[], src: BlockSource): unknown {
    if (!Array.isArray(mark)) return undefined;
    const blocks = this.sinks.map((s, i) => blockSink(s).makeBlock(mark[i], inputs.map((v) => P(v, i)), src));
    return blocks.every((b) => b !== undefined) ? blocks : undefined;
  }
  canRepeatBlock(block: unknown, inputs: readonly XlaValue[], prefix: string): boolean {
    const blocks = block as unknown[];
    return this.sinks.every((s, i) => blockSink(s).canRepeatBlock(blocks[i], inputs.map((v) => P(v, i)), prefix));
  }
  repeatBlock(block: unknown, inputs: readonly XlaValue[], prefix: string, originAt: (pos: number) => InstrOrigin): (k: number) => XlaValue {
    const blocks = block as unknown[];
    const parts = this.sinks.map((s, i) => blockSink(s).repeatBlock(blocks[i], inputs.map((v) => P(v, i)), prefix, originAt));
    return (k) => this.wrap(parts.map((f) => f(k)));
  }
  private wrap(parts: Values): XlaValue {
    return new TeeValue(this.n++, parts);
  }
  private each(f: (s: SpmdEmitter, i: number) => XlaValue): XlaValue {
    const parts: XlaValue[] = new Array(this.sinks.length);
    for (let i = 0; i < this.sinks.length; i++) parts[i] = f(this.sinks[i], i);
    return this.wrap(parts);
  }
  /** The value a sink gave for a tee value. */
  static part(v: XlaValue, i: number): XlaValue {
    return (v as TeeValue).parts[i];
  }
  setOrigin(o: InstrOrigin): void {
    for (const s of this.sinks) s.setOrigin(o);
  }
  arg(type: XlaType, info: ArgInfo): XlaValue {
    return this.each((s) => s.arg(type, info));
  }
  constant(value: number, type: XlaType): XlaValue {
    return this.each((s) => s.constant(value, type));
  }
  iota(type: XlaType, dim: number): XlaValue {
    return this.each((s) => s.iota(type, dim));
  }
  unary(op: XlaUnary, x: XlaValue): XlaValue {
    return this.each((s, i) => s.unary(op, P(x, i)));
  }
  binary(op: XlaBinary, a: XlaValue, b: XlaValue): XlaValue {
    return this.each((s, i) => s.binary(op, P(a, i), P(b, i)));
  }
  compare(dir: XlaCompare, a: XlaValue, b: XlaValue): XlaValue {
    return this.each((s, i) => s.compare(dir, P(a, i), P(b, i)));
  }
  select(p: XlaValue, a: XlaValue, b: XlaValue): XlaValue {
    return this.each((s, i) => s.select(P(p, i), P(a, i), P(b, i)));
  }
  convert(x: XlaValue, dtype: DType): XlaValue {
    return this.each((s, i) => s.convert(P(x, i), dtype));
  }
  dot(a: XlaValue, b: XlaValue, d: DotDims): XlaValue {
    return this.each((s, i) => s.dot(P(a, i), P(b, i), d));
  }
  reduce(x: XlaValue, dims: readonly number[], r: XlaReducer): XlaValue {
    return this.each((s, i) => s.reduce(P(x, i), dims, r));
  }
  reshape(x: XlaValue, shape: readonly number[]): XlaValue {
    return this.each((s, i) => s.reshape(P(x, i), shape));
  }
  transpose(x: XlaValue, perm: readonly number[]): XlaValue {
    return this.each((s, i) => s.transpose(P(x, i), perm));
  }
  broadcastInDim(x: XlaValue, shape: readonly number[], dims: readonly number[]): XlaValue {
    return this.each((s, i) => s.broadcastInDim(P(x, i), shape, dims));
  }
  slice(x: XlaValue, start: readonly number[], limit: readonly number[], strides?: readonly number[]): XlaValue {
    return this.each((s, i) => s.slice(P(x, i), start, limit, strides));
  }
  concatenate(xs: readonly XlaValue[], dim: number): XlaValue {
    return this.each((s, i) => s.concatenate(xs.map((x) => P(x, i)), dim));
  }
  gather(operand: XlaValue, indices: XlaValue, d: GatherDims, outShape: readonly number[]): XlaValue {
    return this.each((s, i) => s.gather(P(operand, i), P(indices, i), d, outShape));
  }
  allGather(x: XlaValue, dim: number, g: ReplicaGroupSet): XlaValue {
    return this.each((s, i) => s.allGather(P(x, i), dim, g));
  }
  allReduce(x: XlaValue, g: ReplicaGroupSet, r: XlaReducer): XlaValue {
    return this.each((s, i) => s.allReduce(P(x, i), g, r));
  }
  reduceScatter(x: XlaValue, dim: number, g: ReplicaGroupSet): XlaValue {
    return this.each((s, i) => s.reduceScatter(P(x, i), dim, g));
  }
  allToAll(x: XlaValue, split: number, concat: number, g: ReplicaGroupSet): XlaValue {
    return this.each((s, i) => s.allToAll(P(x, i), split, concat, g));
  }
  partitionId(): XlaValue {
    return this.each((s) => s.partitionId());
  }
  dynamicSlice(x: XlaValue, starts: readonly XlaValue[], sizes: readonly number[]): XlaValue {
    return this.each((s, i) => s.dynamicSlice(P(x, i), starts.map((v) => P(v, i)), sizes));
  }
  dynamicUpdateSlice(x: XlaValue, update: XlaValue, starts: readonly XlaValue[]): XlaValue {
    return this.each((s, i) => s.dynamicUpdateSlice(P(x, i), P(update, i), starts.map((v) => P(v, i))));
  }
}
const P = (v: XlaValue, i: number) => (v as TeeValue).parts[i];
