/**
 * The cost recorder: a third implementation of the emitter interface. Instead of text it keeps each local
 * (per-device) instruction with XLA HloCostAnalysis numbers — flops (elementwise, compare, select, convert:
 * 1 per element; dot: 2 × output × contraction; reduce: input − output elements), transcendentals (exp, log,
 * tanh, rsqrt, sqrt, sin, cos, logistic, power: 1 per element) — and the dataflow between instructions, from
 * which `fusedBytes` derives fusion-aware memory traffic.
 */
import { DType } from '../../ir/types';
import { BYTES, isFloat, numel } from '../../ir/shape';
import { DotDims, GatherDims, XlaBinary, XlaCompare, XlaReducer, XlaType, XlaUnary, XlaValue } from '../../ir/xla';
import { ArgInfo, ReplicaGroupSet, SpmdEmitter, resultType } from './spmd';

/** fusible: elementwise and layout ops XLA fuses into neighbours; reduce: fuses its producers (input fusion). */
/** update: dynamic-update-slice, in place (XLA's HloCostAnalysis: 2 × update bytes + the start indices). */
export type InstrClass = 'arg' | 'elementwise' | 'layout' | 'dot' | 'reduce' | 'gather' | 'concat' | 'collective' | 'update';

export interface Instr {
  readonly cls: InstrClass;
  readonly opcode: string;
  readonly node: number;
  readonly operands: readonly number[];
  readonly outBytes: number;
  readonly mxuFlops: number;
  readonly vpuFlops: number;
  readonly transcendentals: number;
}

const TRANSCENDENTAL = new Set<string>(['exponential', 'log', 'tanh', 'rsqrt', 'sqrt', 'sine', 'cosine', 'logistic', 'power']);

/** Bytes of a value, floats counted at `dtypeBytes` when given (2: bf16 on TPU). */
export const bytesAt = (t: XlaType, dtypeBytes?: number) => numel(t.shape) * (dtypeBytes !== undefined && isFloat(t.dtype) ? dtypeBytes : BYTES[t.dtype]);

/** A recorded value: its instruction's index (the text `%rN` is made only if something reads `ref`). */
export class RecordedValue implements XlaValue {
  constructor(readonly index: number, readonly type: XlaType) {}
  get ref(): string {
    return `%r${this.index}`;
  }
}

/** The instruction index of a value the recorder returned. */
export const instrIndex = (v: XlaValue): number => (v as RecordedValue).index;

export class CostRecorder implements SpmdEmitter {
  readonly instrs: Instr[] = [];
  private node = -1;

  /** `floatBytes` counts every float tensor at this width (2 = bf16 activations and weights on TPU). */
  constructor(readonly floatBytes?: number) {}

  setOrigin(o: { id: number } | undefined): void {
    this.node = o ? o.id : -1;
  }

  private push(cls: InstrClass, opcode: string, operands: readonly XlaValue[], out: XlaType, f: { mxu?: number; vpu?: number; tr?: number } = {}): XlaValue {
    const i = this.instrs.length;
    this.instrs.push({
      cls,
      opcode,
      node: this.node,
      operands: operands.map(instrIndex),
      outBytes: bytesAt(out, this.floatBytes),
      mxuFlops: f.mxu ?? 0,
      vpuFlops: f.vpu ?? 0,
      transcendentals: f.tr ?? 0,
    });
    return new RecordedValue(i, out);
  }

  arg(type: XlaType, _info: ArgInfo): XlaValue {
    return this.push('arg', 'parameter', [], type);
  }
  constant(_v: number, type: XlaType): XlaValue {
    return this.push('layout', 'constant', [], type);
  }
  iota(type: XlaType): XlaValue {
    return this.push('layout', 'iota', [], type);
  }
  unary(op: XlaUnary, x: XlaValue): XlaValue {
    const k = numel(x.type.shape);
    const out = op === 'not' ? { dtype: 'bool' as DType, shape: x.type.shape } : x.type;
    return this.push('elementwise', op, [x], out, TRANSCENDENTAL.has(op) ? { tr: k } : { vpu: k });
  }
  binary(op: XlaBinary, a: XlaValue, b: XlaValue): XlaValue {
    const k = numel(a.type.shape);
    return this.push('elementwise', op, [a, b], a.type, TRANSCENDENTAL.has(op) ? { tr: k } : { vpu: k });
  }
  compare(_d: XlaCompare, a: XlaValue, b: XlaValue): XlaValue {
    return this.push('elementwise', 'compare', [a, b], { dtype: 'bool', shape: a.type.shape }, { vpu: numel(a.type.shape) });
  }
  select(p: XlaValue, a: XlaValue, b: XlaValue): XlaValue {
    return this.push('elementwise', 'select', [p, a, b], a.type, { vpu: numel(a.type.shape) });
  }
  convert(x: XlaValue, dtype: DType): XlaValue {
    return this.push('elementwise', 'convert', [x], resultType.withDtype(x.type, dtype), { vpu: numel(x.type.shape) });
  }
  dot(a: XlaValue, b: XlaValue, d: DotDims): XlaValue {
    const out = resultType.dot(a.type, b.type, d);
    const contract = numel(d.lhsContract.map((i) => a.type.shape[i]));
    return this.push('dot', 'dot', [a, b], out, { mxu: 2 * numel(out.shape) * contract });
  }
  reduce(x: XlaValue, dims: readonly number[], _r: XlaReducer): XlaValue {
    const out = resultType.reduce(x.type, dims);
    return this.push('reduce', 'reduce', [x], out, { vpu: numel(x.type.shape) - numel(out.shape) });
  }
  reshape(x: XlaValue, shape: readonly number[]): XlaValue {
    return this.push('layout', 'reshape', [x], { dtype: x.type.dtype, shape });
  }
  transpose(x: XlaValue, perm: readonly number[]): XlaValue {
    return this.push('layout', 'transpose', [x], { dtype: x.type.dtype, shape: perm.map((p) => x.type.shape[p]) });
  }
  broadcastInDim(x: XlaValue, shape: readonly number[]): XlaValue {
    return this.push('layout', 'broadcast', [x], { dtype: x.type.dtype, shape });
  }
  slice(x: XlaValue, start: readonly number[], limit: readonly number[], strides?: readonly number[]): XlaValue {
    return this.push('layout', 'slice', [x], resultType.slice(x.type, start, limit, strides));
  }
  concatenate(xs: readonly XlaValue[], dim: number): XlaValue {
    return this.push('concat', 'concatenate', xs, resultType.concat(xs.map((x) => x.type), dim));
  }
  gather(operand: XlaValue, indices: XlaValue, _d: GatherDims, outShape: readonly number[]): XlaValue {
    return this.push('gather', 'gather', [operand, indices], { dtype: operand.type.dtype, shape: outShape });
  }
  allGather(x: XlaValue, dim: number, g: ReplicaGroupSet): XlaValue {
    return this.push('collective', 'all-gather', [x], resultType.gathered(x.type, dim, g.groups[0].length));
  }
  allReduce(x: XlaValue, _g: ReplicaGroupSet, _r: XlaReducer): XlaValue {
    return this.push('collective', 'all-reduce', [x], x.type, { vpu: numel(x.type.shape) });
  }
  reduceScatter(x: XlaValue, dim: number, g: ReplicaGroupSet): XlaValue {
    return this.push('collective', 'reduce-scatter', [x], resultType.scattered(x.type, dim, g.groups[0].length));
  }
  allToAll(x: XlaValue, split: number, concat: number, g: ReplicaGroupSet): XlaValue {
    return this.push('collective', 'all-to-all', [x], resultType.allToAll(x.type, split, concat, g.groups[0].length));
  }
  partitionId(): XlaValue {
    return this.push('layout', 'partition-id', [], { dtype: 'i32', shape: [] });
  }
  dynamicSlice(x: XlaValue, starts: readonly XlaValue[], sizes: readonly number[]): XlaValue {
    return this.push('layout', 'dynamic-slice', [x, ...starts], { dtype: x.type.dtype, shape: sizes });
  }
  dynamicUpdateSlice(x: XlaValue, update: XlaValue, starts: readonly XlaValue[]): XlaValue {
    return this.push('update', 'dynamic-update-slice', [x, update, ...starts], x.type);
  }
}

const FUSIBLE = new Set<InstrClass>(['elementwise', 'layout']);

/**
 * Fusion-aware HBM traffic per instruction, the way XLA fuses: elementwise and layout ops fuse into their
 * consumers, reductions absorb their producers, a dot absorbs layout ops (reshape, transpose, broadcast,
 * convert of its operands). A value is written to HBM only if it leaves a fusion (produced by a non-fusible
 * op, or consumed by one that cannot absorb it, or a program output); an instruction pays for the
 * materialized values it reads and the one it writes.
 */
export function fusedBytes(instrs: readonly Instr[], outputs: readonly number[]): number[] {
  const n = instrs.length;
  const materialized = new Uint8Array(n);
  for (let i = 0; i < n; i++) if (!FUSIBLE.has(instrs[i].cls)) materialized[i] = 1;
  for (const o of outputs) materialized[o] = 1;
  for (let i = 0; i < n; i++) {
    const ins = instrs[i];
    const absorbsAll = ins.cls === 'elementwise' || ins.cls === 'layout' || ins.cls === 'reduce';
    for (const o of ins.operands) {
      const p = instrs[o];
      if (absorbsAll || !FUSIBLE.has(p.cls)) continue;
      if (!(ins.cls === 'dot' && (p.cls === 'layout' || p.opcode === 'convert'))) materialized[o] = 1;
    }
  }
  const bytes = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const ins = instrs[i];
    const ops = ins.operands;
    if (ins.cls === 'arg' || ins.cls === 'collective') bytes[i] = 0;
    // In place: reads the update and writes it into the operand's buffer (plus the scalar start indices).
    else if (ins.cls === 'update') {
      let b = 0;
      for (let k = 1; k < ops.length; k++) b += instrs[ops[k]].outBytes * (k === 1 ? 2 : 1);
      bytes[i] = b;
    } else {
      let b = materialized[i] ? ins.outBytes : 0;
      for (let k = 0; k < ops.length; k++) {
        const o = ops[k];
        // (an operand read twice is paid once)
        if (!materialized[o] || ops.indexOf(o) < k) continue;
        b += ins.cls === 'gather' && k === 0 ? ins.outBytes : instrs[o].outBytes;
      }
      bytes[i] = b;
    }
  }
  return bytes;
}
