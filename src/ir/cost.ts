/**
 * Costs under XLA's HloCostAnalysis conventions. An op's FLOPs and transcendentals default to what its own
 * XLA lowering emits, counted by a builder that applies XLA's per-instruction rules — so the numbers agree
 * with XLA's cost analysis of the emitted module by construction. Bytes default to operands + output
 * (one fused kernel per IR op).
 */
import { Node } from './types';
import { BYTES, numel } from './shape';
import { Cost, getOp } from './op';
import { DotDims, GatherDims, XlaBinary, XlaBuilder, XlaCompare, XlaReducer, XlaType, XlaUnary, XlaValue } from './xla';

const TRANSCENDENTAL = new Set<string>(['exponential', 'log', 'tanh', 'rsqrt', 'sqrt', 'sine', 'cosine', 'logistic', 'power']);

export class CountingBuilder implements XlaBuilder {
  flops = 0;
  transcendentals = 0;
  private n = 0;
  private v(type: XlaType): XlaValue {
    return { ref: `%c${this.n++}`, type };
  }
  constant(_value: number, type: XlaType) { return this.v(type); }
  iota(type: XlaType) { return this.v(type); }
  unary(op: XlaUnary, x: XlaValue) {
    const k = numel(x.type.shape);
    if (TRANSCENDENTAL.has(op)) this.transcendentals += k;
    else this.flops += k;
    return this.v(op === 'not' ? { dtype: 'bool', shape: x.type.shape } : x.type);
  }
  binary(op: XlaBinary, a: XlaValue) {
    const k = numel(a.type.shape);
    if (TRANSCENDENTAL.has(op)) this.transcendentals += k;
    else this.flops += k;
    return this.v(a.type);
  }
  compare(_d: XlaCompare, a: XlaValue) {
    this.flops += numel(a.type.shape);
    return this.v({ dtype: 'bool', shape: a.type.shape });
  }
  select(_p: XlaValue, a: XlaValue) {
    this.flops += numel(a.type.shape);
    return this.v(a.type);
  }
  convert(x: XlaValue, dtype: XlaType['dtype']) {
    this.flops += numel(x.type.shape);
    return this.v({ dtype, shape: x.type.shape });
  }
  dot(a: XlaValue, b: XlaValue, d: DotDims) {
    const batch = d.lhsBatch.map((i) => a.type.shape[i]);
    const lf = a.type.shape.filter((_, i) => !d.lhsBatch.includes(i) && !d.lhsContract.includes(i));
    const rf = b.type.shape.filter((_, i) => !d.rhsBatch.includes(i) && !d.rhsContract.includes(i));
    const shape = [...batch, ...lf, ...rf];
    const contract = numel(d.lhsContract.map((i) => a.type.shape[i]));
    this.flops += 2 * numel(shape) * contract;
    return this.v({ dtype: a.type.dtype, shape });
  }
  reduce(x: XlaValue, dims: readonly number[], _r: XlaReducer) {
    const shape = x.type.shape.filter((_, i) => !dims.includes(i));
    this.flops += numel(x.type.shape) - numel(shape);
    return this.v({ dtype: x.type.dtype, shape });
  }
  reshape(x: XlaValue, shape: readonly number[]) { return this.v({ dtype: x.type.dtype, shape }); }
  transpose(x: XlaValue, perm: readonly number[]) { return this.v({ dtype: x.type.dtype, shape: perm.map((p) => x.type.shape[p]) }); }
  broadcastInDim(x: XlaValue, shape: readonly number[]) { return this.v({ dtype: x.type.dtype, shape }); }
  slice(x: XlaValue, start: readonly number[], limit: readonly number[], strides?: readonly number[]) {
    return this.v({ dtype: x.type.dtype, shape: start.map((s, i) => Math.ceil((limit[i] - s) / (strides?.[i] ?? 1))) });
  }
  concatenate(xs: readonly XlaValue[], dim: number) {
    const shape = [...xs[0].type.shape];
    shape[dim] = xs.reduce((a, x) => a + x.type.shape[dim], 0);
    return this.v({ dtype: xs[0].type.dtype, shape });
  }
  gather(operand: XlaValue, _i: XlaValue, _d: GatherDims, outShape: readonly number[]) { return this.v({ dtype: operand.type.dtype, shape: outShape }); }
  dynamicUpdateSlice(operand: XlaValue) { return this.v(operand.type); }
}

export function bytesOf(t: XlaType): number {
  return numel(t.shape) * BYTES[t.dtype];
}

/** The cost of one node with concrete operand and output types. */
export function nodeCost(node: Node, ins: readonly XlaType[], out: XlaType): Cost {
  const def = getOp(node.op);
  const own = def.cost?.({ node, ins, out }) ?? {};
  let flops = own.flops;
  let transcendentals = own.transcendentals;
  if ((flops === undefined || transcendentals === undefined) && def.xla && !def.source) {
    const cb = new CountingBuilder();
    def.xla(cb, ins.map((t, i) => ({ ref: `%in${i}`, type: t })), node, out);
    flops ??= cb.flops;
    transcendentals ??= cb.transcendentals;
  }
  const bytes = own.bytes ?? (def.source ? 0 : ins.reduce((a, t) => a + bytesOf(t), 0) + bytesOf(out));
  return { flops: flops ?? 0, transcendentals: transcendentals ?? 0, bytes };
}
