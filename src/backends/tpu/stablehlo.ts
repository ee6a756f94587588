/**
 * StableHLO MLIR text printer: implements the IR's XlaBuilder (plus the SPMD additions) by writing one
 * instruction per call, in MLIR's generic operation form, which every StableHLO/MLIR parser accepts.
 */
import { DType } from '../../ir/types';

import { DotDims, GatherDims, XlaBinary, XlaCompare, XlaReducer, XlaType, XlaUnary, XlaValue } from '../../ir/xla';
import { ArgInfo, ModuleOptions, Output, ReplicaGroupSet, reducerInit, resultType } from './spmd';
import { TextBuffer } from './text';
import type { FunctionPrinter } from './outline';

const ELT: Record<DType, string> = { f32: 'f32', bf16: 'bf16', f16: 'f16', i32: 'i32', i64: 'i64', bool: 'i1' };

export function tensorType(t: XlaType): string {
  let s = 'tensor<';
  for (const d of t.shape) s += d + 'x';
  return s + ELT[t.dtype] + '>';
}

/** A printed value keeps its type's text (operand types are printed again at every use). */
interface Printed extends XlaValue {
  readonly tt?: string;
}
const typeOf = (v: XlaValue) => (v as Printed).tt ?? tensorType(v.type);

const HEX_INF: Partial<Record<DType, [string, string, string]>> = {
  f32: ['0x7F800000', '0xFF800000', '0x7FC00000'],
  bf16: ['0x7F80', '0xFF80', '0x7FC0'],
  f16: ['0x7C00', '0xFC00', '0x7E00'],
};

/** An MLIR literal for `v` as an element of `dtype` (floats always carry a '.', non-finite ones are hex). */
export function mlirLiteral(v: number, dtype: DType): string {
  if (dtype === 'bool') return v ? 'true' : 'false';
  if (dtype === 'i32' || dtype === 'i64') return String(Math.trunc(v));
  if (!Number.isFinite(v)) {
    const h = HEX_INF[dtype]!;
    return Number.isNaN(v) ? h[2] : v > 0 ? h[0] : h[1];
  }
  return floatText(dtype === 'f32' ? Math.fround(v) : v);
}

export function floatText(v: number): string {
  let s = String(v);
  if (!/[.]/.test(s)) s = s.includes('e') ? s.replace('e', '.0e') : `${s}.0`;
  return s;
}

const UNARY: Record<XlaUnary, string> = {
  negate: 'negate', exponential: 'exponential', log: 'log', tanh: 'tanh', rsqrt: 'rsqrt', sqrt: 'sqrt',
  sine: 'sine', cosine: 'cosine', abs: 'abs', logistic: 'logistic', not: 'not',
};
const BINARY: Record<XlaBinary, string> = {
  add: 'add', subtract: 'subtract', multiply: 'multiply', divide: 'divide', maximum: 'maximum', minimum: 'minimum',
  power: 'power', and: 'and', or: 'or', remainder: 'remainder',
};
const REDUCER: Record<XlaReducer, string> = { add: 'add', max: 'maximum', min: 'minimum', mul: 'multiply' };

const arr = (xs: readonly number[]) => `array<i64${xs.length ? ': ' + xs.join(', ') : ''}>`;
const list = (xs: readonly number[]) => `[${xs.join(', ')}]`;

export class StableHloPrinter implements FunctionPrinter {
  private lines = new TextBuffer();
  /** Printed functions (`func.func private`), in order of first use. */
  private readonly functions: string[] = [];
  /** The function being printed, and what it interrupted. */
  private fn: { name: string; params: Printed[]; lines: TextBuffer; origin: StableHloPrinter['origin']; locText: string } | undefined;
  private readonly args: { v: XlaValue; info: ArgInfo }[] = [];
  private n = 0;
  private channel = 0;
  private origin: { id: number; op: string; scope: string; name?: string } | undefined;
  /** Replica-group attributes, printed once as aliases at the top of the module. */
  private readonly groupAliases = new Map<string, { alias: string; text: string }>();

  constructor(readonly opts: ModuleOptions) {}

  /** The location suffix of the current origin, computed once per origin. */
  private locText = '';

  setOrigin(o: { id: number; op: string; scope: string; name?: string } | undefined): void {
    if (o === this.origin) return;
    this.origin = o;
    if (!o) this.locText = '';
    else {
      const name = o.name ?? `${o.scope ? o.scope + '/' : ''}${o.op}`;
      this.locText = ` loc(${JSON.stringify(name)})`;
    }
  }

  private loc(): string {
    return this.locText;
  }

  private emit(opText: string, operands: readonly XlaValue[], attrs: string, out: XlaType, region?: string, outText = tensorType(out)): XlaValue {
    const ref = `%${this.n++}`;
    let refs = '';
    let types = '';
    for (let i = 0; i < operands.length; i++) {
      if (i) {
        refs += ', ';
        types += ', ';
      }
      refs += operands[i].ref;
      types += typeOf(operands[i]);
    }
    const a = attrs ? ` {${attrs}}` : '';
    const r = region ? ` (${region})` : '';
    this.lines.line(`    ${ref} = "stablehlo.${opText}"(${refs})${r}${a} : (${types}) -> ${outText}${this.locText}`);
    return { ref, type: out, tt: outText } as Printed;
  }

  arg(type: XlaType, info: ArgInfo): XlaValue {
    const v = { ref: `%arg${info.index ?? this.args.length}`, type };
    this.args.push({ v, info });
    return v;
  }

  constant(value: number, type: XlaType): XlaValue {
    return this.emit('constant', [], `value = dense<${mlirLiteral(value, type.dtype)}> : ${tensorType(type)}`, type);
  }
  iota(type: XlaType, dim: number): XlaValue {
    return this.emit('iota', [], `iota_dimension = ${dim} : i64`, type);
  }
  unary(op: XlaUnary, x: XlaValue): XlaValue {
    return this.emit(UNARY[op], [x], '', x.type);
  }
  binary(op: XlaBinary, a: XlaValue, b: XlaValue): XlaValue {
    return this.emit(BINARY[op], [a, b], '', a.type);
  }
  compare(dir: XlaCompare, a: XlaValue, b: XlaValue): XlaValue {
    const kind = a.type.dtype === 'bool' ? 'UNSIGNED' : a.type.dtype === 'i32' || a.type.dtype === 'i64' ? 'SIGNED' : 'FLOAT';
    return this.emit(
      'compare',
      [a, b],
      `comparison_direction = #stablehlo<comparison_direction ${dir}>, compare_type = #stablehlo<comparison_type ${kind}>`,
      { dtype: 'bool', shape: a.type.shape },
    );
  }
  select(p: XlaValue, a: XlaValue, b: XlaValue): XlaValue {
    return this.emit('select', [p, a, b], '', a.type);
  }
  convert(x: XlaValue, dtype: DType): XlaValue {
    return this.emit('convert', [x], '', resultType.withDtype(x.type, dtype));
  }
  dot(a: XlaValue, b: XlaValue, d: DotDims): XlaValue {
    const f: string[] = [];
    if (d.lhsBatch.length) f.push(`lhs_batching_dimensions = ${list(d.lhsBatch)}`, `rhs_batching_dimensions = ${list(d.rhsBatch)}`);
    f.push(`lhs_contracting_dimensions = ${list(d.lhsContract)}`, `rhs_contracting_dimensions = ${list(d.rhsContract)}`);
    const p = this.opts.precision ?? 'DEFAULT';
    return this.emit(
      'dot_general',
      [a, b],
      `dot_dimension_numbers = #stablehlo.dot<${f.join(', ')}>, precision_config = [#stablehlo<precision ${p}>, #stablehlo<precision ${p}>]`,
      resultType.dot(a.type, b.type, d),
    );
  }
  private scalarRegion(reducer: XlaReducer, dtype: DType): string {
    const k = this.n++;
    const st = tensorType({ dtype, shape: [] });
    return (
      `{\n    ^bb0(%lhs${k}: ${st}, %rhs${k}: ${st}):\n` +
      `      %red${k} = "stablehlo.${REDUCER[reducer]}"(%lhs${k}, %rhs${k}) : (${st}, ${st}) -> ${st}\n` +
      `      "stablehlo.return"(%red${k}) : (${st}) -> ()\n    }`
    );
  }
  reduce(x: XlaValue, dims: readonly number[], reducer: XlaReducer): XlaValue {
    const init = this.constant(reducerInit(reducer, x.type.dtype), { dtype: x.type.dtype, shape: [] });
    return this.emit('reduce', [x, init], `dimensions = ${arr(dims)}`, resultType.reduce(x.type, dims), this.scalarRegion(reducer, x.type.dtype));
  }
  reshape(x: XlaValue, shape: readonly number[]): XlaValue {
    return this.emit('reshape', [x], '', { dtype: x.type.dtype, shape });
  }
  transpose(x: XlaValue, perm: readonly number[]): XlaValue {
    return this.emit('transpose', [x], `permutation = ${arr(perm)}`, { dtype: x.type.dtype, shape: perm.map((p) => x.type.shape[p]) });
  }
  broadcastInDim(x: XlaValue, shape: readonly number[], dims: readonly number[]): XlaValue {
    return this.emit('broadcast_in_dim', [x], `broadcast_dimensions = ${arr(dims)}`, { dtype: x.type.dtype, shape });
  }
  slice(x: XlaValue, start: readonly number[], limit: readonly number[], strides?: readonly number[]): XlaValue {
    const st = strides ?? start.map(() => 1);
    return this.emit('slice', [x], `start_indices = ${arr(start)}, limit_indices = ${arr(limit)}, strides = ${arr(st)}`, resultType.slice(x.type, start, limit, strides));
  }
  concatenate(xs: readonly XlaValue[], dim: number): XlaValue {
    return this.emit('concatenate', xs, `dimension = ${dim} : i64`, resultType.concat(xs.map((x) => x.type), dim));
  }
  gather(operand: XlaValue, indices: XlaValue, d: GatherDims, outShape: readonly number[]): XlaValue {
    return this.emit(
      'gather',
      [operand, indices],
      `dimension_numbers = #stablehlo.gather<offset_dims = ${list(d.offsetDims)}, collapsed_slice_dims = ${list(d.collapsedSliceDims)}, ` +
        `start_index_map = ${list(d.startIndexMap)}, index_vector_dim = ${d.indexVectorDim}>, indices_are_sorted = false, slice_sizes = ${arr(d.sliceSizes)}`,
      { dtype: operand.type.dtype, shape: outShape },
    );
  }

  private groups(g: ReplicaGroupSet): string {
    const key = g.iota;
    let a = this.groupAliases.get(key);
    if (!a) {
      const text = `dense<${JSON.stringify(g.groups).replace(/,/g, ', ')}> : tensor<${g.groups.length}x${g.groups[0].length}xi64>`;
      a = { alias: `#groups${this.groupAliases.size}`, text };
      this.groupAliases.set(key, a);
    }
    return `replica_groups = ${a.alias}, channel_handle = #stablehlo.channel_handle<handle = ${++this.channel}, type = 1>, use_global_device_ids`;
  }
  allGather(x: XlaValue, dim: number, g: ReplicaGroupSet): XlaValue {
    return this.emit('all_gather', [x], `all_gather_dim = ${dim} : i64, ${this.groups(g)}`, resultType.gathered(x.type, dim, g.groups[0].length));
  }
  allReduce(x: XlaValue, g: ReplicaGroupSet, reducer: XlaReducer): XlaValue {
    return this.emit('all_reduce', [x], this.groups(g), x.type, this.scalarRegion(reducer, x.type.dtype));
  }
  reduceScatter(x: XlaValue, dim: number, g: ReplicaGroupSet): XlaValue {
    return this.emit('reduce_scatter', [x], `scatter_dimension = ${dim} : i64, ${this.groups(g)}`, resultType.scattered(x.type, dim, g.groups[0].length), this.scalarRegion('add', x.type.dtype));
  }
  allToAll(x: XlaValue, split: number, concat: number, g: ReplicaGroupSet): XlaValue {
    const k = g.groups[0].length;
    return this.emit('all_to_all', [x], `split_dimension = ${split} : i64, concat_dimension = ${concat} : i64, split_count = ${k} : i64, ${this.groups(g)}`, resultType.allToAll(x.type, split, concat, k));
  }
  partitionId(): XlaValue {
    // partition_id is ui32 (printed so), converted to i32 (the value is small, so convert is exact).
    const u = this.emit('partition_id', [], this.opts.manual ? 'mhlo.sharding = "{manual}"' : '', { dtype: 'i32', shape: [] }, undefined, 'tensor<ui32>');
    const ref = `%${this.n++}`;
    this.lines.line(`    ${ref} = "stablehlo.convert"(${u.ref}) : (tensor<ui32>) -> tensor<i32>${this.loc()}`);
    return { ref, type: { dtype: 'i32', shape: [] } };
  }
  dynamicSlice(x: XlaValue, starts: readonly XlaValue[], sizes: readonly number[]): XlaValue {
    return this.emit('dynamic_slice', [x, ...starts], `slice_sizes = ${arr(sizes)}`, { dtype: x.type.dtype, shape: sizes });
  }
  dynamicUpdateSlice(x: XlaValue, update: XlaValue, starts: readonly XlaValue[]): XlaValue {
    return this.emit('dynamic_update_slice', [x, update, ...starts], '', x.type);
  }

  beginFunction(name: string, params: readonly XlaType[]): XlaValue[] {
    if (this.fn) throw new Error('StableHloPrinter: functions do not nest');
    const ps = params.map((type, i) => ({ ref: `%arg${i}`, type, tt: tensorType(type) }) as Printed);
    this.fn = { name, params: ps, lines: this.lines, origin: this.origin, locText: this.locText };
    this.lines = new TextBuffer();
    this.origin = undefined;
    this.locText = '';
    return ps;
  }

  endFunction(results: readonly XlaValue[]): void {
    const f = this.fn;
    if (!f) throw new Error('StableHloPrinter: endFunction without beginFunction');
    const sig = f.params.map((p) => `${p.ref}: ${p.tt}`).join(', ');
    const types = results.map(typeOf).join(', ');
    this.functions.push(
      `  func.func private @${f.name}(${sig}) -> (${types}) {\n` +
        this.lines.toString() +
        `    "func.return"(${results.map((r) => r.ref).join(', ')}) : (${types}) -> ()\n  }\n`,
    );
    this.lines = f.lines;
    this.origin = f.origin;
    this.locText = f.locText;
    this.fn = undefined;
  }

  call(name: string, args: readonly XlaValue[], results: readonly XlaType[]): XlaValue[] {
    const ref = `%${this.n++}`;
    const rt = results.map(tensorType);
    const lhs = results.length === 1 ? ref : `${ref}:${results.length}`;
    this.lines.line(
      `    ${lhs} = func.call @${name}(${args.map((a) => a.ref).join(', ')}) : (${args.map(typeOf).join(', ')}) -> (${rt.join(', ')})${this.locText}`,
    );
    return results.map((type, i) => ({ ref: results.length === 1 ? ref : `${ref}#${i}`, type, tt: rt[i] }) as Printed);
  }

  /** The whole module text. */
  finish(outputs: readonly Output[]): string {
    const sig = [...this.args]
      .sort((a, b) => (a.info.index ?? 0) - (b.info.index ?? 0))
      .map(({ v, info }) => {
        const attrs = [`jax.arg_info = ${JSON.stringify(info.name)}`];
        const sh = info.sharding ?? (this.opts.manual ? '{manual}' : undefined);
        if (sh) attrs.push(`mhlo.sharding = ${JSON.stringify(sh)}`);
        return `%${v.ref.slice(1)}: ${tensorType(v.type)} {${attrs.join(', ')}}`;
      })
      .join(',\n      ');
    const res = outputs
      .map((o) => {
        const attrs = [`jax.result_info = ${JSON.stringify(o.name)}`];
        const sh = o.sharding ?? (this.opts.manual ? '{manual}' : undefined);
        if (sh) attrs.push(`mhlo.sharding = ${JSON.stringify(sh)}`);
        return `${tensorType(o.value.type)} {${attrs.join(', ')}}`;
      })
      .join(', ');
    const aliases = [...this.groupAliases.values()].map((a) => `${a.alias} = ${a.text}\n`).join('');
    const name = this.opts.name.replace(/[^A-Za-z0-9_]/g, '_');
    return (
      aliases +
      `module @${name} attributes {mhlo.num_partitions = ${this.opts.numPartitions} : i32, mhlo.num_replicas = 1 : i32} {\n` +
      `  func.func public @main(${sig}) -> (${res}) {\n` +
      this.lines.toString() +
      `    "func.return"(${outputs.map((o) => o.value.ref).join(', ')}) : (${outputs.map((o) => tensorType(o.value.type)).join(', ')}) -> ()\n` +
      `  }\n` +
      this.functions.join('') +
      `}\n`
    );
  }

  get instructionCount(): number {
    return this.lines.count;
  }
}

