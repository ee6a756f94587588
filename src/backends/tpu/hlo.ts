/**
 * HLO text printer: the same builder interface as the StableHLO printer, writing XLA's HLO text (what XLA
 * dumps and what `hlo_module_from_text` parses). Reductions and all-reduces call scalar computations that are
 * emitted once per (reducer, dtype).
 */
import { DType } from '../../ir/types';
import { DotDims, GatherDims, XlaBinary, XlaCompare, XlaReducer, XlaType, XlaUnary, XlaValue } from '../../ir/xla';
import { ArgInfo, ModuleOptions, Output, ReplicaGroupSet, reducerInit, resultType } from './spmd';
import { TextBuffer } from './text';
import type { FunctionPrinter } from './outline';

const ELT: Record<DType, string> = { f32: 'f32', bf16: 'bf16', f16: 'f16', i32: 's32', i64: 's64', bool: 'pred' };

export function hloType(t: XlaType): string {
  return `${ELT[t.dtype]}[${t.shape.join(',')}]`;
}

export function hloLiteral(v: number, dtype: DType): string {
  if (dtype === 'bool') return v ? 'true' : 'false';
  if (dtype === 'i32' || dtype === 'i64') return String(Math.trunc(v));
  if (Number.isNaN(v)) return 'nan';
  if (!Number.isFinite(v)) return v > 0 ? 'inf' : '-inf';
  return String(dtype === 'f32' ? Math.fround(v) : v);
}

const REDUCER: Record<XlaReducer, string> = { add: 'add', max: 'maximum', min: 'minimum', mul: 'multiply' };
const set = (xs: readonly number[]) => `{${xs.join(',')}}`;

export class HloPrinter implements FunctionPrinter {
  private lines = new TextBuffer();
  /** Printed layer functions (computations called by `call`), in order of first use. */
  private readonly functions: string[] = [];
  /** The function being printed, and what it interrupted. */
  private fn: { name: string; params: string[]; lines: TextBuffer; origin: HloPrinter['origin']; metaText: string } | undefined;
  private readonly params: [number, string][] = [];
  private readonly computations = new Map<string, string>();
  private n = 0;
  private channel = 0;
  private origin: { id: number; op: string; scope: string; name?: string } | undefined;

  constructor(readonly opts: ModuleOptions) {}

  /** The metadata suffix of the current origin, computed once per origin. */
  private metaText = '';

  setOrigin(o: { id: number; op: string; scope: string; name?: string } | undefined): void {
    if (o === this.origin) return;
    this.origin = o;
    if (!o) this.metaText = '';
    else {
      const name = o.name ?? `${o.scope ? o.scope + '/' : ''}${o.op}`;
      this.metaText = `, metadata={op_type=${JSON.stringify(o.op)} op_name=${JSON.stringify(name)}}`;
    }
  }

  /** One instruction; `outText` overrides the printed result type, `refs` the text between the parentheses. */
  private emit(opcode: string, operands: readonly XlaValue[], attrs: string, out: XlaType, outText = hloType(out), refs = ''): XlaValue {
    const ref = `v${this.n++}`;
    for (let i = 0; i < operands.length; i++) refs += i ? ', ' + operands[i].ref : operands[i].ref;
    this.lines.line(`  ${ref} = ${outText} ${opcode}(${refs})${attrs ? ', ' + attrs : ''}${this.metaText}`);
    return { ref, type: out };
  }

  private computation(r: XlaReducer, dtype: DType): string {
    const name = `${REDUCER[r]}_${ELT[dtype]}`;
    if (!this.computations.has(name)) {
      const t = hloType({ dtype, shape: [] });
      this.computations.set(name, `${name} {\n  a = ${t} parameter(0)\n  b = ${t} parameter(1)\n  ROOT r = ${t} ${REDUCER[r]}(a, b)\n}\n`);
    }
    return name;
  }

  arg(type: XlaType, info: ArgInfo): XlaValue {
    const i = info.index ?? this.params.length;
    const ref = `p${i}`;
    const shs = info.sharding ?? (this.opts.manual ? '{manual}' : undefined);
    const sh = shs ? `, sharding=${shs}` : '';
    this.params.push([i, `  ${ref} = ${hloType(type)} parameter(${i})${sh}, metadata={op_name=${JSON.stringify(info.name)}}`]);
    return { ref, type };
  }

  constant(value: number, type: XlaType): XlaValue {
    const c = this.emit('constant', [], '', { dtype: type.dtype, shape: [] }, undefined, hloLiteral(value, type.dtype));
    return type.shape.length ? this.emit('broadcast', [c], 'dimensions={}', type) : c;
  }
  iota(type: XlaType, dim: number): XlaValue {
    return this.emit('iota', [], `iota_dimension=${dim}`, type);
  }
  unary(op: XlaUnary, x: XlaValue): XlaValue {
    return this.emit(op, [x], '', x.type);
  }
  binary(op: XlaBinary, a: XlaValue, b: XlaValue): XlaValue {
    return this.emit(op, [a, b], '', a.type);
  }
  compare(dir: XlaCompare, a: XlaValue, b: XlaValue): XlaValue {
    return this.emit('compare', [a, b], `direction=${dir}`, { dtype: 'bool', shape: a.type.shape });
  }
  select(p: XlaValue, a: XlaValue, b: XlaValue): XlaValue {
    return this.emit('select', [p, a, b], '', a.type);
  }
  convert(x: XlaValue, dtype: DType): XlaValue {
    return this.emit('convert', [x], '', resultType.withDtype(x.type, dtype));
  }
  dot(a: XlaValue, b: XlaValue, d: DotDims): XlaValue {
    const at: string[] = [];
    if (d.lhsBatch.length) at.push(`lhs_batch_dims=${set(d.lhsBatch)}`);
    at.push(`lhs_contracting_dims=${set(d.lhsContract)}`);
    if (d.rhsBatch.length) at.push(`rhs_batch_dims=${set(d.rhsBatch)}`);
    at.push(`rhs_contracting_dims=${set(d.rhsContract)}`);
    if (this.opts.precision === 'HIGHEST') at.push('operand_precision={highest,highest}');
    return this.emit('dot', [a, b], at.join(', '), resultType.dot(a.type, b.type, d));
  }
  reduce(x: XlaValue, dims: readonly number[], reducer: XlaReducer): XlaValue {
    const init = this.constant(reducerInit(reducer, x.type.dtype), { dtype: x.type.dtype, shape: [] });
    return this.emit('reduce', [x, init], `dimensions=${set(dims)}, to_apply=${this.computation(reducer, x.type.dtype)}`, resultType.reduce(x.type, dims));
  }
  reshape(x: XlaValue, shape: readonly number[]): XlaValue {
    return this.emit('reshape', [x], '', { dtype: x.type.dtype, shape });
  }
  transpose(x: XlaValue, perm: readonly number[]): XlaValue {
    return this.emit('transpose', [x], `dimensions=${set(perm)}`, { dtype: x.type.dtype, shape: perm.map((p) => x.type.shape[p]) });
  }
  broadcastInDim(x: XlaValue, shape: readonly number[], dims: readonly number[]): XlaValue {
    return this.emit('broadcast', [x], `dimensions=${set(dims)}`, { dtype: x.type.dtype, shape });
  }
  slice(x: XlaValue, start: readonly number[], limit: readonly number[], strides?: readonly number[]): XlaValue {
    const parts = start.map((s, i) => (strides && strides[i] !== 1 ? `[${s}:${limit[i]}:${strides[i]}]` : `[${s}:${limit[i]}]`));
    return this.emit('slice', [x], `slice={${parts.join(', ')}}`, resultType.slice(x.type, start, limit, strides));
  }
  concatenate(xs: readonly XlaValue[], dim: number): XlaValue {
    return this.emit('concatenate', xs, `dimensions={${dim}}`, resultType.concat(xs.map((x) => x.type), dim));
  }
  gather(operand: XlaValue, indices: XlaValue, d: GatherDims, outShape: readonly number[]): XlaValue {
    return this.emit(
      'gather',
      [operand, indices],
      `offset_dims=${set(d.offsetDims)}, collapsed_slice_dims=${set(d.collapsedSliceDims)}, start_index_map=${set(d.startIndexMap)}, index_vector_dim=${d.indexVectorDim}, slice_sizes=${set(d.sliceSizes)}`,
      { dtype: operand.type.dtype, shape: outShape },
    );
  }
  private groups(g: ReplicaGroupSet): string {
    return `channel_id=${++this.channel}, replica_groups=${g.iota}, use_global_device_ids=true`;
  }
  allGather(x: XlaValue, dim: number, g: ReplicaGroupSet): XlaValue {
    return this.emit('all-gather', [x], `${this.groups(g)}, dimensions={${dim}}`, resultType.gathered(x.type, dim, g.groups[0].length));
  }
  allReduce(x: XlaValue, g: ReplicaGroupSet, reducer: XlaReducer): XlaValue {
    return this.emit('all-reduce', [x], `${this.groups(g)}, to_apply=${this.computation(reducer, x.type.dtype)}`, x.type);
  }
  reduceScatter(x: XlaValue, dim: number, g: ReplicaGroupSet): XlaValue {
    return this.emit('reduce-scatter', [x], `${this.groups(g)}, dimensions={${dim}}, to_apply=${this.computation('add', x.type.dtype)}`, resultType.scattered(x.type, dim, g.groups[0].length));
  }
  allToAll(x: XlaValue, split: number, concat: number, g: ReplicaGroupSet): XlaValue {
    if (split !== concat) throw new Error('HLO text all-to-all splits and concatenates one dimension; split and concat dims must match');
    return this.emit('all-to-all', [x], `${this.groups(g)}, dimensions={${split}}`, resultType.allToAll(x.type, split, split, 1));
  }
  partitionId(): XlaValue {
    const u = this.emit('partition-id', [], this.opts.manual ? 'sharding={manual}' : '', { dtype: 'i32', shape: [] }, 'u32[]');
    return this.emit('convert', [u], '', { dtype: 'i32', shape: [] });
  }
  dynamicSlice(x: XlaValue, starts: readonly XlaValue[], sizes: readonly number[]): XlaValue {
    return this.emit('dynamic-slice', [x, ...starts], `dynamic_slice_sizes=${set(sizes)}`, { dtype: x.type.dtype, shape: sizes });
  }
  dynamicUpdateSlice(x: XlaValue, update: XlaValue, starts: readonly XlaValue[]): XlaValue {
    return this.emit('dynamic-update-slice', [x, update, ...starts], '', x.type);
  }

  beginFunction(name: string, params: readonly XlaType[]): XlaValue[] {
    if (this.fn) throw new Error('HloPrinter: functions do not nest');
    this.fn = { name, params: params.map((t, i) => `  a${i} = ${hloType(t)} parameter(${i})`), lines: this.lines, origin: this.origin, metaText: this.metaText };
    this.lines = new TextBuffer();
    this.origin = undefined;
    this.metaText = '';
    return params.map((type, i) => ({ ref: `a${i}`, type }));
  }

  endFunction(results: readonly XlaValue[]): void {
    const f = this.fn;
    if (!f) throw new Error('HloPrinter: endFunction without beginFunction');
    const root = `  ROOT ${f.name}_out = (${results.map((r) => hloType(r.type)).join(', ')}) tuple(${results.map((r) => r.ref).join(', ')})`;
    this.functions.push(`${f.name} {\n${f.params.join('\n')}\n${this.lines.toString()}${root}\n}\n`);
    this.lines = f.lines;
    this.origin = f.origin;
    this.metaText = f.metaText;
    this.fn = undefined;
  }

  call(name: string, args: readonly XlaValue[], results: readonly XlaType[]): XlaValue[] {
    const tuple: XlaType = { dtype: 'f32', shape: [] };
    const t = `(${results.map(hloType).join(', ')})`;
    const c = this.emit('call', args, `to_apply=${name}`, tuple, t);
    return results.map((type, i) => this.emit('get-tuple-element', [c], `index=${i}`, type));
  }

  finish(outputs: readonly Output[]): string {
    const body = [...this.params].sort((a, b) => a[0] - b[0]).map((p) => p[1]);
    if (this.lines.count) body.push(this.lines.toString().slice(0, -1));
    const shardingOf = (o: Output) => o.sharding ?? (this.opts.manual ? '{manual}' : undefined);
    if (outputs.length === 1) {
      const sh = shardingOf(outputs[0]);
      body.push(`  ROOT out = ${hloType(outputs[0].value.type)} copy(${outputs[0].value.ref})${sh ? `, sharding=${sh}` : ''}`);
    } else {
      const shs = outputs.map(shardingOf);
      const sh = shs.every((x) => x) ? `, sharding={${shs.join(', ')}}` : '';
      body.push(`  ROOT out = (${outputs.map((o) => hloType(o.value.type)).join(', ')}) tuple(${outputs.map((o) => o.value.ref).join(', ')})${sh}`);
    }
    const name = this.opts.name.replace(/[^A-Za-z0-9_.]/g, '_');
    return (
      `HloModule ${name}, num_partitions=${this.opts.numPartitions}\n\n` +
      [...this.computations.values(), ...this.functions].join('\n') +
      (this.computations.size + this.functions.length ? '\n' : '') +
      `ENTRY main {\n${body.join('\n')}\n}\n`
    );
  }
}
