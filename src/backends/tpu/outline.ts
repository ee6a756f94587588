/**
 * Layer functions. A 46-layer model partitioned for a pod is the same few layer bodies over and over: printed
 * inline, Gemma 2 27B's training step is 28 MB of program text, and printing it was half of the compile.
 *
 * The `Outliner` is an emitter that only records: every instruction the partitioner (or the whole-program
 * lowering) sends it, with the IR node it came from. The trace is cut into *segments* by the scope of that node:
 * a scope with a numeric path component (`model.layers.7.mlp`) belongs to the segment `model.layers.7`, anything
 * else to `main`. Two segments are the same computation when they record the same instructions with the same
 * attributes, the same operand wiring (a value defined in the segment, or the k-th value it reads from outside),
 * the same input types and the same values used after them — checked instruction by instruction, never assumed
 * from the model file. `print` then prints the trace into a printer: a segment shape met at least twice becomes
 * one function (printed once, at its first use) and a call at each segment; everything else is printed inline,
 * exactly as a direct printer would have printed it (with `functions: false` the output is byte-identical to
 * printing without the outliner).
 *
 * Inside a function the instruction locations name the layer with `*` (`model.layers.*.mlp/matmul`); each call is
 * located at its own layer (`model.layers.7`).
 */
import { DType } from '../../ir/types';
import { DotDims, GatherDims, XlaBinary, XlaCompare, XlaReducer, XlaType, XlaUnary, XlaValue } from '../../ir/xla';
import { ArgInfo, Output, ReplicaGroupSet, SpmdEmitter, resultType } from './spmd';
import { segmentOf } from './replay';

export type Origin = { id: number; op: string; scope: string; name?: string } | undefined;

/** What a printer needs to print functions and calls. */
export interface FunctionPrinter extends SpmdEmitter {
  /** Start a function body (its instructions follow); returns its parameters. */
  beginFunction(name: string, params: readonly XlaType[]): XlaValue[];
  /** End the body started last, returning `results`. */
  endFunction(results: readonly XlaValue[]): void;
  /** Call a function printed before; returns its results. */
  call(name: string, args: readonly XlaValue[], results: readonly XlaType[]): XlaValue[];
}

/** A recorded value: `seg` is the segment that defined it (-1: main), `local` its instruction's index in it. */
class Rec implements XlaValue {
  constructor(readonly type: XlaType, readonly id: number, readonly seg: number, readonly local: number) {}
  get ref(): string {
    return `%r${this.id}`;
  }
}

interface Entry {
  readonly m: keyof SpmdEmitter;
  readonly args: unknown[];
  readonly out: Rec;
  readonly origin: Origin;
  /** The origin's scope below its segment's prefix (`.mlp` in `model.layers.7.mlp`; '' outside segments). */
  readonly rel: string;
}

interface Segment {
  readonly index: number;
  /** `model.layers.7` */
  readonly prefix: string;
  /** `model.layers.*` */
  readonly pattern: string;
  readonly start: number;
  end: number;
  /** Values read from outside, in order of first use (id → position). */
  readonly inputs: Map<number, number>;
  /** Values used after the segment, ascending (definition order). */
  outputs: number[];
  /** Index of the kind (same computation) this segment is an instance of; -1 when printed inline. */
  kind: number;
}

interface Kind {
  readonly rep: Segment;
  /** The function's name (set once the kind is known to repeat). */
  name: string;
  count: number;
}

/** A segment must have at least this many instructions to be worth a function. */
const MIN_INSTRUCTIONS = 4;

export class Outliner implements SpmdEmitter {
  private readonly entries: Entry[] = [];
  private readonly args: { v: Rec; info: ArgInfo }[] = [];
  private readonly segments: Segment[] = [];
  /** Every value, by id. */
  private readonly recs: Rec[] = [];
  private nValues = 0;
  private origin: Origin;
  /** Segment prefix/pattern of the current origin. */
  private prefix = '';
  private pattern = '';
  /** Per scope: segment prefix and pattern, and the scope below the prefix. */
  private readonly scopes = new Map<string, [string, string, string]>();
  private rel = '';
  private cur: Segment | undefined;
  private analysed: { kinds: Kind[]; outputs: readonly XlaValue[] } | undefined;

  setOrigin(o: Origin): void {
    if (o === this.origin) return;
    this.origin = o;
    const scope = o?.scope ?? '';
    let s = this.scopes.get(scope);
    if (!s) {
      const [prefix, pattern] = segmentOf(scope);
      this.scopes.set(scope, (s = [prefix, pattern, prefix ? scope.slice(prefix.length) : '']));
    }
    this.prefix = s[0];
    this.pattern = s[1];
    this.rel = s[2];
  }

  private rec(m: keyof SpmdEmitter, args: unknown[], type: XlaType): XlaValue {
    const index = this.entries.length;
    let seg = -1;
    if (this.prefix) {
      if (!this.cur || this.cur.prefix !== this.prefix || this.cur.end !== index) {
        this.cur = { index: this.segments.length, prefix: this.prefix, pattern: this.pattern, start: index, end: index, inputs: new Map(), outputs: [], kind: -1 };
        this.segments.push(this.cur);
      }
      this.cur.end = index + 1;
      seg = this.segments.length - 1;
    }
    const id = this.nValues++;
    const out = new Rec(type, id, seg, seg >= 0 ? index - this.cur!.start : -1);
    this.recs.push(out);
    this.entries.push({ m, args, out, origin: this.origin, rel: this.rel });
    return out;
  }

  arg(type: XlaType, info: ArgInfo): XlaValue {
    const v = new Rec(type, this.nValues++, -1, -1);
    this.recs.push(v);
    this.args.push({ v, info });
    return v;
  }
  constant(value: number, type: XlaType): XlaValue {
    return this.rec('constant', [value, type], type);
  }
  iota(type: XlaType, dim: number): XlaValue {
    return this.rec('iota', [type, dim], type);
  }
  unary(op: XlaUnary, x: XlaValue): XlaValue {
    return this.rec('unary', [op, x], x.type);
  }
  binary(op: XlaBinary, a: XlaValue, b: XlaValue): XlaValue {
    return this.rec('binary', [op, a, b], a.type);
  }
  compare(dir: XlaCompare, a: XlaValue, b: XlaValue): XlaValue {
    return this.rec('compare', [dir, a, b], { dtype: 'bool', shape: a.type.shape });
  }
  select(p: XlaValue, a: XlaValue, b: XlaValue): XlaValue {
    return this.rec('select', [p, a, b], a.type);
  }
  convert(x: XlaValue, dtype: DType): XlaValue {
    return this.rec('convert', [x, dtype], resultType.withDtype(x.type, dtype));
  }
  dot(a: XlaValue, b: XlaValue, d: DotDims): XlaValue {
    return this.rec('dot', [a, b, d], resultType.dot(a.type, b.type, d));
  }
  reduce(x: XlaValue, dims: readonly number[], reducer: XlaReducer): XlaValue {
    return this.rec('reduce', [x, dims, reducer], resultType.reduce(x.type, dims));
  }
  reshape(x: XlaValue, shape: readonly number[]): XlaValue {
    return this.rec('reshape', [x, shape], { dtype: x.type.dtype, shape });
  }
  transpose(x: XlaValue, perm: readonly number[]): XlaValue {
    return this.rec('transpose', [x, perm], { dtype: x.type.dtype, shape: perm.map((p) => x.type.shape[p]) });
  }
  broadcastInDim(x: XlaValue, shape: readonly number[], dims: readonly number[]): XlaValue {
    return this.rec('broadcastInDim', [x, shape, dims], { dtype: x.type.dtype, shape });
  }
  slice(x: XlaValue, start: readonly number[], limit: readonly number[], strides?: readonly number[]): XlaValue {
    return this.rec('slice', strides ? [x, start, limit, strides] : [x, start, limit], resultType.slice(x.type, start, limit, strides));
  }
  concatenate(xs: readonly XlaValue[], dim: number): XlaValue {
    return this.rec('concatenate', [xs, dim], resultType.concat(xs.map((x) => x.type), dim));
  }
  gather(operand: XlaValue, indices: XlaValue, d: GatherDims, outShape: readonly number[]): XlaValue {
    return this.rec('gather', [operand, indices, d, outShape], { dtype: operand.type.dtype, shape: outShape });
  }
  allGather(x: XlaValue, dim: number, g: ReplicaGroupSet): XlaValue {
    return this.rec('allGather', [x, dim, g], resultType.gathered(x.type, dim, g.groups[0].length));
  }
  allReduce(x: XlaValue, g: ReplicaGroupSet, reducer: XlaReducer): XlaValue {
    return this.rec('allReduce', [x, g, reducer], x.type);
  }
  reduceScatter(x: XlaValue, dim: number, g: ReplicaGroupSet): XlaValue {
    return this.rec('reduceScatter', [x, dim, g], resultType.scattered(x.type, dim, g.groups[0].length));
  }
  allToAll(x: XlaValue, split: number, concat: number, g: ReplicaGroupSet): XlaValue {
    return this.rec('allToAll', [x, split, concat, g], resultType.allToAll(x.type, split, concat, g.groups[0].length));
  }
  partitionId(): XlaValue {
    return this.rec('partitionId', [], { dtype: 'i32', shape: [] });
  }
  dynamicSlice(x: XlaValue, starts: readonly XlaValue[], sizes: readonly number[]): XlaValue {
    return this.rec('dynamicSlice', [x, starts, sizes], { dtype: x.type.dtype, shape: sizes });
  }
  dynamicUpdateSlice(x: XlaValue, update: XlaValue, starts: readonly XlaValue[]): XlaValue {
    return this.rec('dynamicUpdateSlice', [x, update, starts], x.type);
  }

  /** Inputs and outputs of every segment, then the kinds (same computation). Once, at the first print or stats. */
  private analyse(outputs: readonly XlaValue[]): Kind[] {
    if (this.analysed) {
      // The analysis depends on the program's outputs (values used after a segment are its outputs): every print
      // and stats call must name the same ones.
      const was = this.analysed.outputs;
      if (outputs.length !== was.length || outputs.some((v, i) => v !== was[i])) throw new Error('Outliner: printed again with other outputs');
      return this.analysed.kinds;
    }
    const segs = this.segments;
    const outSets: Set<number>[] = segs.map(() => new Set());
    const use = (v: unknown, seg: number) => {
      if (!(v instanceof Rec) || v.seg === seg) return;
      if (v.seg >= 0) outSets[v.seg].add(v.id);
      if (seg >= 0) {
        const ins = segs[seg].inputs;
        if (!ins.has(v.id)) ins.set(v.id, ins.size);
      }
    };
    for (const e of this.entries) {
      const seg = e.out.seg;
      for (const a of e.args) {
        if (Array.isArray(a)) {
          if (a.length && a[0] instanceof Rec) for (const x of a) use(x, seg);
        } else use(a, seg);
      }
    }
    for (const o of outputs) use(o, -1);
    segs.forEach((s, k) => (s.outputs = [...outSets[k]].sort((a, b) => a - b)));

    const kinds: Kind[] = [];
    const buckets = new Map<string, Kind[]>();
    for (const s of segs) {
      if (s.end - s.start < MIN_INSTRUCTIONS || !s.outputs.length) continue;
      const key = `${s.pattern}|${s.end - s.start}|${s.inputs.size}|${s.outputs.length}`;
      let list = buckets.get(key);
      if (!list) buckets.set(key, (list = []));
      let k = list.find((c) => this.same(c.rep, s));
      if (!k) {
        k = { rep: s, name: '', count: 0 };
        list.push(k);
        kinds.push(k);
      }
      k.count++;
      s.kind = kinds.indexOf(k);
    }
    // Names only for what becomes a function, numbered per scope pattern in order of first use (model_layers_fn0, …).
    const named = new Map<string, number>();
    for (const k of kinds) {
      if (k.count < 2) continue;
      const base = k.rep.pattern.replace(/\.\*$/, '').replace(/[^A-Za-z0-9_]/g, '_') || 'segment';
      const i = named.get(base) ?? 0;
      named.set(base, i + 1);
      k.name = `${base}_fn${i}`;
    }
    this.analysed = { kinds, outputs: [...outputs] };
    return kinds;
  }

  /** Same computation: instruction for instruction, same method, attributes, operand wiring and origin within the layer. */
  private same(r: Segment, s: Segment): boolean {
    if (r.outputs.length !== s.outputs.length || r.inputs.size !== s.inputs.size) return false;
    const V = this.recs;
    for (let i = 0; i < r.outputs.length; i++) if (V[r.outputs[i]].local !== V[s.outputs[i]].local) return false;
    const ri = [...r.inputs.keys()];
    const si = [...s.inputs.keys()];
    for (let i = 0; i < ri.length; i++) if (!sameType(V[ri[i]].type, V[si[i]].type)) return false;
    const E = this.entries;
    for (let i = 0; i < r.end - r.start; i++) {
      const a = E[r.start + i];
      const b = E[s.start + i];
      if (a.m !== b.m || a.args.length !== b.args.length) return false;
      if (a.origin !== b.origin && (a.origin?.op !== b.origin?.op || a.rel !== b.rel)) return false;
      for (let k = 0; k < a.args.length; k++) if (!sameArg(a.args[k], b.args[k], r, s)) return false;
    }
    return true;
  }

  /** How many functions `print` makes (with functions), and how many segments call them. */
  stats(outputs: readonly XlaValue[]): { functions: number; calls: number } {
    const used = this.analyse(outputs).filter((k) => k.count >= 2);
    return { functions: used.length, calls: used.reduce((a, k) => a + k.count, 0) };
  }

  /**
   * Print the trace into `p` (arguments, instructions, calls); returns the program outputs as `p`'s values, ready
   * for `p.finish`. With `functions: false` every segment is printed inline.
   */
  print(p: FunctionPrinter, outputs: readonly Output[], o: { functions?: boolean } = {}): Output[] {
    const kinds = this.analyse(outputs.map((x) => x.value));
    const functions = o.functions ?? true;
    const vals = new Array<XlaValue>(this.nValues);
    for (const a of this.args) vals[a.v.id] = p.arg(a.v.type, a.info);
    const printed = new Set<Kind>();
    // Function bodies' values (a body reads only its parameters and what it defined before, so one array serves all).
    let scratch: XlaValue[] | undefined;
    const E = this.entries;
    let next = 0;
    const segs = this.segments;
    for (let i = 0; i < E.length; ) {
      while (next < segs.length && segs[next].start < i) next++;
      const s = next < segs.length && segs[next].start === i ? segs[next] : undefined;
      const k = s && functions && s.kind >= 0 ? kinds[s.kind] : undefined;
      if (s && k && k.count >= 2) {
        if (!printed.has(k)) {
          this.printFunction(p, k, (scratch ??= new Array<XlaValue>(this.nValues)));
          printed.add(k);
        }
        p.setOrigin({ id: -1, op: 'call', scope: s.prefix, name: s.prefix });
        const results = p.call(k.name, [...s.inputs.keys()].map((id) => vals[id]), s.outputs.map((id) => this.recs[id].type));
        s.outputs.forEach((id, j) => (vals[id] = results[j]));
        i = s.end;
        continue;
      }
      apply(p, E[i], E[i].origin, vals);
      i++;
    }
    p.setOrigin(undefined);
    return outputs.map((x) => ({ ...x, value: vals[(x.value as Rec).id] }));
  }

  private printFunction(p: FunctionPrinter, k: Kind, vals: XlaValue[]): void {
    const s = k.rep;
    const ids = [...s.inputs.keys()];
    p.setOrigin(undefined);
    const params = p.beginFunction(k.name, ids.map((id) => this.recs[id].type));
    ids.forEach((id, j) => (vals[id] = params[j]));
    const rel = new Map<Origin, Origin>();
    for (let i = s.start; i < s.end; i++) {
      const e = this.entries[i];
      let o = rel.get(e.origin);
      if (!o && e.origin) rel.set(e.origin, (o = { id: e.origin.id, op: e.origin.op, scope: s.pattern + e.origin.scope.slice(s.prefix.length) }));
      apply(p, e, o, vals);
    }
    p.setOrigin(undefined);
    p.endFunction(s.outputs.map((id) => vals[id]));
  }
}

function apply(p: SpmdEmitter, e: Entry, origin: Origin, vals: XlaValue[]): void {
  p.setOrigin(origin);
  const args = e.args.map((a) => (a instanceof Rec ? vals[a.id] : Array.isArray(a) && a.length && a[0] instanceof Rec ? a.map((x: Rec) => vals[x.id]) : a));
  vals[e.out.id] = (p[e.m] as (...xs: unknown[]) => XlaValue).apply(p, args);
}

function sameType(a: XlaType, b: XlaType): boolean {
  return a === b || (a.dtype === b.dtype && a.shape.length === b.shape.length && a.shape.every((d, i) => d === b.shape[i]));
}

/** Wiring code of a value in a segment: its definition index inside it (≥ 0), or -(input position + 1). */
function code(v: Rec, s: Segment): number {
  return v.seg === s.index ? v.local : -(s.inputs.get(v.id)! + 1);
}

function sameArg(a: unknown, b: unknown, r: Segment, s: Segment): boolean {
  if (a === b && !(a instanceof Rec)) return typeof a !== 'number' || Object.is(a, b); // a constant 0 is not -0
  if (typeof a === 'number' && typeof b === 'number') return Number.isNaN(a) && Number.isNaN(b);
  if (a instanceof Rec) return b instanceof Rec && code(a, r) === code(b, s);
  if (typeof a !== 'object' || a === null || typeof b !== 'object' || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!sameArg(a[i], b[i], r, s)) return false;
    return true;
  }
  const ga = a as Partial<ReplicaGroupSet>;
  // Replica groups: XLA's iota form (`[768,8]<=[6144]`, with its transpose) names the groups exactly.
  if (typeof ga.iota === 'string') return ga.iota === (b as Partial<ReplicaGroupSet>).iota && sameArg(ga.axes, (b as ReplicaGroupSet).axes, r, s);
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  for (const key of ka) if (!sameArg((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key], r, s)) return false;
  return true;
}
