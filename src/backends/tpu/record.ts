/**
 * The cost recorder: a third implementation of the emitter interface. Instead of text it keeps each local
 * (per-device) instruction with XLA HloCostAnalysis numbers — flops (elementwise, compare, select, convert:
 * 1 per element; dot: 2 × output × contraction; reduce: input − output elements), transcendentals (exp, log,
 * tanh, rsqrt, sqrt, sin, cos, logistic, power: 1 per element) — and the dataflow between instructions, from
 * which `fusedBytes` derives fusion-aware memory traffic.
 */
import { DType } from '../../ir/types';
import { BYTES, isFloat, numel, typeEq } from '../../ir/shape';
import { DotDims, GatherDims, XlaBinary, XlaCompare, XlaReducer, XlaType, XlaUnary, XlaValue } from '../../ir/xla';
import { ArgInfo, BlockSink, BlockSource, InstrOrigin, ReplicaGroupSet, SpmdEmitter, resultType } from './spmd';

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

const CLASSES: readonly InstrClass[] = ['arg', 'elementwise', 'layout', 'dot', 'reduce', 'gather', 'concat', 'collective', 'update'];
const CLASS_CODE = new Map(CLASSES.map((c, i) => [c, i]));

/**
 * The recorded instructions, column by column: a typed array per field (operands flattened), so a recorded
 * program of tens of thousands of instructions is a dozen arrays, not tens of thousands of objects for the
 * garbage collector to copy. `at(i)` gives one instruction as an `Instr`.
 */
export class InstrTable {
  length = 0;
  private cap = 1024;
  /** Index into CLASSES. */
  private clsCode = new Uint8Array(this.cap);
  private opcodes: string[] = [];
  node = new Int32Array(this.cap);
  outBytes = new Float64Array(this.cap);
  mxuFlops = new Float64Array(this.cap);
  vpuFlops = new Float64Array(this.cap);
  transcendentals = new Float64Array(this.cap);
  /** Operands of instruction i: `operands[opStart[i] … opStart[i + 1])`. */
  operands = new Int32Array(this.cap * 2);
  opStart = new Int32Array(this.cap + 1);

  cls(i: number): InstrClass {
    return CLASSES[this.clsCode[i]];
  }
  opcode(i: number): string {
    return this.opcodes[i];
  }

  push(cls: InstrClass, opcode: string, node: number, operands: readonly XlaValue[], outBytes: number, mxu: number, vpu: number, tr: number): number {
    const i = this.length;
    let o = this.newRow(operands.length);
    for (const v of operands) this.operands[o++] = instrIndex(v);
    this.setRow(i, CLASS_CODE.get(cls)!, opcode, node, outBytes, mxu, vpu, tr);
    return i;
  }

  /** Append a copy of row `i` with another node and operands (a repeated block: same instruction, other values). */
  pushCopy(i: number, node: number, operands: ArrayLike<number>): number {
    const j = this.length;
    let o = this.newRow(operands.length);
    for (let k = 0; k < operands.length; k++) this.operands[o++] = operands[k];
    this.setRow(j, this.clsCode[i], this.opcodes[i], node, this.outBytes[i], this.mxuFlops[i], this.vpuFlops[i], this.transcendentals[i]);
    return j;
  }

  /** Room for row `length` and its `nOperands` operands; returns where its operands go. */
  private newRow(nOperands: number): number {
    this.writable();
    const i = this.length;
    if (i === this.cap) this.grow();
    const o = this.opStart[i];
    if (o + nOperands > this.operands.length) this.operands = grown(this.operands, Math.max(2 * this.operands.length, o + nOperands));
    this.opStart[i + 1] = o + nOperands;
    return o;
  }

  private setRow(i: number, clsCode: number, opcode: string, node: number, outBytes: number, mxu: number, vpu: number, tr: number): void {
    this.clsCode[i] = clsCode;
    this.opcodes.push(opcode);
    this.node[i] = node;
    this.outBytes[i] = outBytes;
    this.mxuFlops[i] = mxu;
    this.vpuFlops[i] = vpu;
    this.transcendentals[i] = tr;
    this.length = i + 1;
  }

  /** A `prefix` view. */
  private view = false;
  private writable(): void {
    if (this.view) throw new Error('InstrTable: a prefix view is read-only');
  }

  private grow(): void {
    this.cap *= 2;
    this.clsCode = grown(this.clsCode, this.cap);
    this.node = grown(this.node, this.cap);
    this.outBytes = grown(this.outBytes, this.cap);
    this.mxuFlops = grown(this.mxuFlops, this.cap);
    this.vpuFlops = grown(this.vpuFlops, this.cap);
    this.transcendentals = grown(this.transcendentals, this.cap);
    this.opStart = grown(this.opStart, this.cap + 1);
  }

  /** Instruction i as an object. */
  at(i: number): Instr {
    return {
      cls: this.cls(i),
      opcode: this.opcodes[i],
      node: this.node[i],
      operands: Array.from(this.operands.subarray(this.opStart[i], this.opStart[i + 1])),
      outBytes: this.outBytes[i],
      mxuFlops: this.mxuFlops[i],
      vpuFlops: this.vpuFlops[i],
      transcendentals: this.transcendentals[i],
    };
  }

  toArray(): Instr[] {
    return Array.from({ length: this.length }, (_, i) => this.at(i));
  }

  /** The first n instructions, read-only (a view sharing this table's arrays: pushing to it throws). */
  prefix(n: number): InstrTable {
    const t = Object.create(InstrTable.prototype) as InstrTable;
    Object.assign(t, this, { length: Math.min(n, this.length), view: true });
    return t;
  }
}

function grown<T extends Uint8Array | Int32Array | Float64Array>(a: T, n: number): T {
  const b = new (a.constructor as new (n: number) => T)(n);
  b.set(a);
  return b;
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

/** A recorded run of instructions that can be repeated with other inputs (`BlockSink`). */
interface RecorderBlock {
  readonly start: number;
  readonly end: number;
  /** Per operand of the run (flattened like `InstrTable.operands`): k ≥ 0 the run's k-th instruction, -(p + 1) input p. */
  readonly wiring: Int32Array;
  /** Per input: the first input with the same value (the aliasing a repeat must have). */
  readonly alias: readonly number[];
  readonly inputTypes: readonly XlaType[];
  readonly src: BlockSource;
}

export class CostRecorder implements SpmdEmitter, BlockSink {
  private node = -1;

  /**
   * `floatBytes` counts every float tensor at this width (2 = bf16 activations and weights on TPU), except the
   * instructions of the nodes `f32` marks (by node id: what a bf16 program keeps in f32, `f32NodesOf`), at 4.
   */
  constructor(
    readonly floatBytes?: number,
    readonly instrs: InstrTable = new InstrTable(),
    readonly f32?: Uint8Array,
  ) {}

  setOrigin(o: { id: number } | undefined): void {
    this.node = o ? o.id : -1;
  }

  private push(cls: InstrClass, opcode: string, operands: readonly XlaValue[], out: XlaType, f: { mxu?: number; vpu?: number; tr?: number } = {}): XlaValue {
    const width = this.f32 !== undefined && this.node >= 0 && this.f32[this.node] ? 4 : this.floatBytes;
    const i = this.instrs.push(cls, opcode, this.node, operands, bytesAt(out, width), f.mxu ?? 0, f.vpu ?? 0, f.tr ?? 0);
    return new RecordedValue(i, out);
  }

  arg(type: XlaType, _info: ArgInfo): XlaValue {
    return this.push('arg', 'parameter', [], type);
  }

  blockStart(): unknown {
    return this.instrs.length;
  }

  makeBlock(mark: unknown, inputs: readonly XlaValue[], src: BlockSource): RecorderBlock | undefined {
    const t = this.instrs;
    const start = mark as number;
    const end = t.length;
    if (end - start !== src.pos.length) return undefined;
    const firstInput = new Map<number, number>();
    const alias: number[] = [];
    inputs.forEach((v, p) => {
      const i = instrIndex(v);
      if (!firstInput.has(i)) firstInput.set(i, p);
      alias.push(firstInput.get(i)!);
    });
    const wiring = new Int32Array(t.opStart[end] - t.opStart[start]);
    for (let i = start; i < end; i++) {
      for (let k = t.opStart[i]; k < t.opStart[i + 1]; k++) {
        const o = t.operands[k];
        const p = firstInput.get(o);
        if (o >= start && o < i) wiring[k - t.opStart[start]] = o - start;
        else if (p !== undefined) wiring[k - t.opStart[start]] = -(p + 1);
        else return undefined;
      }
    }
    return { start, end, wiring, alias, inputTypes: inputs.map((v) => v.type), src };
  }

  canRepeatBlock(block: unknown, inputs: readonly XlaValue[]): boolean {
    const b = block as RecorderBlock;
    if (inputs.length !== b.alias.length) return false;
    for (let p = 0; p < inputs.length; p++) {
      if (!typeEq(inputs[p].type, b.inputTypes[p])) return false;
      if (inputs.findIndex((v) => instrIndex(v) === instrIndex(inputs[p])) !== b.alias[p]) return false;
    }
    return true;
  }

  repeatBlock(block: unknown, inputs: readonly XlaValue[], _prefix: string, originAt: (pos: number) => InstrOrigin): (k: number) => XlaValue {
    const b = block as RecorderBlock;
    const t = this.instrs;
    const base = t.length;
    const ins = inputs.map(instrIndex);
    const ops: number[] = [];
    for (let i = b.start; i < b.end; i++) {
      ops.length = 0;
      for (let k = t.opStart[i]; k < t.opStart[i + 1]; k++) {
        const w = b.wiring[k - t.opStart[b.start]];
        ops.push(w >= 0 ? base + w : ins[-w - 1]);
      }
      const o = originAt(b.src.pos[i - b.start]);
      t.pushCopy(i, o ? o.id : -1, ops);
    }
    return (k) => new RecordedValue(base + k, b.src.types[k]);
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


/**
 * Fusion-aware HBM traffic per instruction, the way XLA fuses: elementwise and layout ops fuse into their
 * consumers, reductions absorb their producers, a dot absorbs layout ops (reshape, transpose, broadcast,
 * convert of its operands). A value is written to HBM only if it leaves a fusion (produced by a non-fusible
 * op, or consumed by one that cannot absorb it, or a program output); an instruction pays for the
 * materialized values it reads and the one it writes.
 */
export function fusedBytes(t: InstrTable, outputs: readonly number[]): Float64Array {
  const n = t.length;
  const { operands: ops, opStart, outBytes } = t;
  const fusible = (i: number) => {
    const c = t.cls(i);
    return c === 'elementwise' || c === 'layout';
  };
  const materialized = new Uint8Array(n);
  for (let i = 0; i < n; i++) if (!fusible(i)) materialized[i] = 1;
  for (const o of outputs) materialized[o] = 1;
  for (let i = 0; i < n; i++) {
    const c = t.cls(i);
    const absorbsAll = c === 'elementwise' || c === 'layout' || c === 'reduce';
    for (let k = opStart[i]; k < opStart[i + 1]; k++) {
      const o = ops[k];
      if (absorbsAll || !fusible(o)) continue;
      if (!(c === 'dot' && (t.cls(o) === 'layout' || t.opcode(o) === 'convert'))) materialized[o] = 1;
    }
  }
  const bytes = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const c = t.cls(i);
    const s = opStart[i];
    const e = opStart[i + 1];
    if (c === 'arg' || c === 'collective') continue;
    // In place: reads the update and writes it into the operand's buffer (plus the scalar start indices).
    if (c === 'update') {
      let b = 0;
      for (let k = s + 1; k < e; k++) b += outBytes[ops[k]] * (k === s + 1 ? 2 : 1);
      bytes[i] = b;
      continue;
    }
    let b = materialized[i] ? outBytes[i] : 0;
    for (let k = s; k < e; k++) {
      const o = ops[k];
      if (!materialized[o]) continue;
      // (an operand read twice is paid once)
      let seen = false;
      for (let q = s; q < k && !seen; q++) seen = ops[q] === o;
      if (seen) continue;
      b += c === 'gather' && k === s ? outBytes[i] : outBytes[o];
    }
    bytes[i] = b;
  }
  return bytes;
}
