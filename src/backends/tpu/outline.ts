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
 *
 * *Repeats* (the whole-program lowering, `emitWholeProgram`): a layer whose nodes, scopes and input types are those
 * of a layer lowered before would lower to that layer's instructions again, so it can be recorded as one
 * `repeat` of that segment's `template` with its own inputs instead — no lowering, no entries. Its values are made
 * when something reads them; its entries only when it must be printed inline or compared with another segment.
 * The segments, the kinds and the printed text are the same as recording every instruction (tested).
 */
import { DType } from '../../ir/types';
import { DotDims, GatherDims, XlaBinary, XlaCompare, XlaReducer, XlaType, XlaUnary, XlaValue } from '../../ir/xla';
import { ArgInfo, BlockSink, BlockSource, InstrOrigin, Output, ReplicaGroupSet, SpmdEmitter, resultType } from './spmd';
import { typeEq } from '../../ir/shape';
import { segmentOf } from './replay';

/** The node an entry came from (`undefined`: none). */
export type Origin = InstrOrigin;

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
  /** Values used after the segment, in definition order (by local index). */
  outputs: number[];
  /** Index of the kind (same computation) this segment is an instance of; -1 when printed inline. */
  kind: number;
  /** A repeat (see `repeat`): recorded as "the template's segment again, reading `ext`", with no entries of its own. */
  repeat?: Repeat;
}

/**
 * A lowered segment that may repeat: its entries are those of `seg`, which read from outside only the values of
 * the graph segment's external nodes (`ext` of `template`), and each node of the graph segment has a value there.
 */
export interface SegmentTemplate {
  readonly seg: Segment;
  /** `seg.end` when the template was made (a segment extended afterwards is no template any more). */
  readonly end: number;
  /** Value id → index of the first external node with that value. */
  readonly extIndex: ReadonlyMap<number, number>;
  /** Per external node: the index of the first external node with the same value (the aliasing a repeat must have). */
  readonly alias: readonly number[];
  readonly extTypes: readonly XlaType[];
  /** Per graph node position: its value as a local index k ≥ 0 of `seg`, or -(e + 1) for external e. */
  readonly nodeValue: Int32Array;
  /** Per entry of `seg`: the position of the graph node it was lowered for. */
  readonly entryNode: Int32Array;
}

/** A repeat's values: of the graph node at a position (whole program), or of the instruction at a local index. */
export interface RepeatValues {
  node(pos: number): XlaValue;
  local(k: number): XlaValue;
}

interface Repeat {
  readonly template: SegmentTemplate;
  readonly ext: readonly Rec[];
  readonly originAt: (pos: number) => Origin;
  /** Its values by local index, made when first asked for (by a later reader, or when its entries are made). */
  readonly locals: (Rec | undefined)[];
  /** Its entries, made only when needed (printed inline, compared with another segment, or extended). */
  entries?: Entry[];
}

interface Kind {
  readonly rep: Segment;
  /** The function's name (set once the kind is known to repeat). */
  name: string;
  count: number;
}

/** A segment must have at least this many instructions to be worth a function. */
const MIN_INSTRUCTIONS = 4;

export class Outliner implements SpmdEmitter, BlockSink {
  /**
   * `repeats: false` refuses every `repeat` (each segment is then recorded instruction by instruction; the printed
   * programs are the same either way).
   */
  constructor(private readonly o: { repeats?: boolean } = {}) {}

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
    const s = this.scopeOf(o?.scope ?? '');
    this.prefix = s[0];
    this.pattern = s[1];
    this.rel = s[2];
  }

  private scopeOf(scope: string): [string, string, string] {
    let s = this.scopes.get(scope);
    if (!s) {
      const [prefix, pattern] = segmentOf(scope);
      this.scopes.set(scope, (s = [prefix, pattern, prefix ? scope.slice(prefix.length) : '']));
    }
    return s;
  }

  private newRec(type: XlaType, seg: number, local: number): Rec {
    const v = new Rec(type, this.nValues++, seg, local);
    this.recs.push(v);
    return v;
  }

  private rec(m: keyof SpmdEmitter, args: unknown[], type: XlaType): XlaValue {
    // An instruction of the same layer right after a repeat continues that segment: its entries are made first.
    if (this.prefix && this.cur?.repeat && this.cur.prefix === this.prefix && this.cur.end === this.entries.length) this.materialize(this.cur);
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
    const out = this.newRec(type, seg, seg >= 0 ? index - this.cur!.start : -1);
    this.entries.push({ m, args, out, origin: this.origin, rel: this.rel });
    return out;
  }

  arg(type: XlaType, info: ArgInfo): XlaValue {
    const v = this.newRec(type, -1, -1);
    this.args.push({ v, info });
    return v;
  }

  /** Segments recorded as repeats (and still so: a repeat continued by the next instruction gets entries of its own). */
  get repeated(): number {
    return this.segments.filter((s) => s.repeat).length;
  }

  /** Where the next instruction will be recorded (the start of a segment about to be lowered, for `template`). */
  get position(): number {
    return this.entries.length;
  }

  /**
   * After lowering a graph segment from `start`: a template for repeating it, when its instructions are exactly one
   * segment that reads from outside only `ext` (the values of its external nodes, in first-use order), every node
   * has a value (`nodeValues`, by position) in it or in `ext`, and each instruction came from one of its nodes
   * (`origins`, by position). Otherwise undefined.
   */
  template(start: number, ext: readonly XlaValue[], nodeValues: readonly XlaValue[], origins: readonly Origin[]): SegmentTemplate | undefined {
    const seg = this.cur;
    if (!seg || seg.repeat || seg.start !== start || seg.end !== this.entries.length || seg.end === start) return undefined;
    const extIndex = new Map<number, number>();
    const alias: number[] = [];
    for (let e = 0; e < ext.length; e++) {
      const v = ext[e];
      if (!(v instanceof Rec)) return undefined;
      const first = extIndex.get(v.id);
      if (first === undefined) extIndex.set(v.id, e);
      alias.push(first ?? e);
    }
    const inside = (v: Rec) => v.seg === seg.index || extIndex.has(v.id);
    const nodeValue = new Int32Array(nodeValues.length);
    for (let j = 0; j < nodeValues.length; j++) {
      const v = nodeValues[j];
      if (!(v instanceof Rec) || !inside(v)) return undefined;
      nodeValue[j] = v.seg === seg.index ? v.local : -(extIndex.get(v.id)! + 1);
    }
    const at = new Map<Origin, number>();
    origins.forEach((o, j) => at.set(o, j));
    const entryNode = new Int32Array(seg.end - seg.start);
    for (let i = seg.start; i < seg.end; i++) {
      const e = this.entries[i];
      const j = at.get(e.origin);
      if (j === undefined) return undefined;
      entryNode[i - seg.start] = j;
      for (const a of e.args) {
        if (a instanceof Rec ? !inside(a) : Array.isArray(a) && a.some((x) => x instanceof Rec && !inside(x))) return undefined;
      }
    }
    return { seg, end: seg.end, extIndex, alias, extTypes: ext.map((v) => v.type), nodeValue, entryNode };
  }

  /**
   * Record a graph segment that is the template's again — the same nodes (op, attributes, types, wiring, scopes
   * below the layer), reading `ext` (of the same types and aliasing) — without lowering it: the lowering is a
   * function of exactly these, so its instructions would be the template's with `ext` for its inputs. Returns its
   * values (of the node at a position, of the instruction at a local index), or undefined when refused (then lower
   * the segment as usual): a repeat that would continue the segment recorded just before it is refused, so
   * segments are cut exactly where lowering would cut them.
   */
  repeat(t: SegmentTemplate, ext: readonly XlaValue[], prefix: string, originAt: (pos: number) => Origin): RepeatValues | undefined {
    if (!this.canRepeat(t, ext, prefix)) return undefined;
    const start = this.entries.length;
    const seg: Segment = {
      index: this.segments.length, prefix, pattern: t.seg.pattern, start, end: start, inputs: new Map(), outputs: [], kind: -1,
      repeat: { template: t, ext: ext as Rec[], originAt, locals: new Array(t.end - t.seg.start) },
    };
    this.segments.push(seg);
    this.cur = seg;
    return {
      node: (pos) => {
        const k = t.nodeValue[pos];
        return k >= 0 ? this.localOf(seg, k) : ext[-k - 1];
      },
      local: (k) => this.localOf(seg, k),
    };
  }

  /** Whether `repeat` would take it (see there). */
  canRepeat(t: SegmentTemplate, ext: readonly XlaValue[], prefix: string): boolean {
    if (this.o.repeats === false || t.seg.end !== t.end || ext.length !== t.alias.length) return false;
    if (this.cur && this.cur.prefix === prefix && this.cur.end === this.entries.length) return false;
    for (let e = 0; e < ext.length; e++) {
      const v = ext[e];
      if (!(v instanceof Rec) || !typeEq(v.type, t.extTypes[e])) return false;
      if (ext[t.alias[e]] !== v || ext.indexOf(v) !== t.alias[e]) return false;
    }
    return true;
  }

  // A block (`BlockSink`, the partitioner's segment replay) is a template of the instructions since the mark, whose
  // values come by instruction index.
  blockStart(): unknown {
    return this.entries.length;
  }
  makeBlock(mark: unknown, inputs: readonly XlaValue[], src: BlockSource): unknown {
    if (this.entries.length - (mark as number) !== src.pos.length) return undefined;
    return this.template(mark as number, inputs, [], src.origins);
  }
  canRepeatBlock(block: unknown, inputs: readonly XlaValue[], prefix: string): boolean {
    return this.canRepeat(block as SegmentTemplate, inputs, prefix);
  }
  repeatBlock(block: unknown, inputs: readonly XlaValue[], prefix: string, originAt: (pos: number) => Origin): (k: number) => XlaValue {
    return this.repeat(block as SegmentTemplate, inputs, prefix, originAt)!.local;
  }

  /** A repeat's value at local index k. */
  private localOf(s: Segment, k: number): Rec {
    const r = s.repeat!;
    return (r.locals[k] ??= this.newRec(this.entries[r.template.seg.start + k].out.type, s.index, k));
  }

  /** A repeat's entries: the template's, reading the repeat's values and inputs, located at its own nodes. */
  private repeatEntries(s: Segment): Entry[] {
    const r = s.repeat!;
    if (r.entries) return r.entries;
    const t = r.template;
    const map = (x: Rec) => (x.seg === t.seg.index ? this.localOf(s, x.local) : r.ext[t.extIndex.get(x.id)!]);
    const out: Entry[] = [];
    for (let i = t.seg.start; i < t.end; i++) {
      const e = this.entries[i];
      const args = mapRecs(e.args, map);
      const origin = r.originAt(t.entryNode[i - t.seg.start]);
      out.push({ m: e.m, args, out: this.localOf(s, i - t.seg.start), origin, rel: this.scopeOf(origin?.scope ?? '')[2] });
    }
    return (r.entries = out);
  }

  /** Turn the repeat recorded last into entries of its own (an instruction of the same layer follows it). */
  private materialize(s: Segment): void {
    for (const e of this.repeatEntries(s)) this.entries.push(e);
    s.end = this.entries.length;
    s.repeat = undefined;
  }

  /** A segment's entries: `list[at … at + size)`. */
  private body(s: Segment): { list: Entry[]; at: number; size: number } {
    return s.repeat ? { list: this.repeatEntries(s), at: 0, size: sizeOf(s) } : { list: this.entries, at: s.start, size: sizeOf(s) };
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
    // A repeat reads what its template read, in the same order: the template's inputs, as the repeat's.
    for (const s of segs) {
      const r = s.repeat;
      if (!r) continue;
      for (const id of r.template.seg.inputs.keys()) use(r.ext[r.template.extIndex.get(id)!], s.index);
    }
    for (const o of outputs) use(o, -1);
    const V = this.recs;
    segs.forEach((s, k) => (s.outputs = [...outSets[k]].sort((a, b) => V[a].local - V[b].local)));

    const kinds: Kind[] = [];
    const buckets = new Map<string, Kind[]>();
    for (const s of segs) {
      const size = sizeOf(s);
      if (size < MIN_INSTRUCTIONS || !s.outputs.length) continue;
      const key = `${s.pattern}|${size}|${s.inputs.size}|${s.outputs.length}`;
      let list = buckets.get(key);
      if (!list) buckets.set(key, (list = []));
      // A repeat is its template's computation by construction; with the same values used after it, it is of the
      // template's kind (the only kind that can match: kinds are never the same computation as each other).
      const t = s.repeat?.template.seg;
      let k = t && t.kind >= 0 && sameOutputs(V, t.outputs, s.outputs) ? kinds[t.kind] : list.find((c) => this.same(c.rep, s));
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
    if (r.outputs.length !== s.outputs.length || r.inputs.size !== s.inputs.size || sizeOf(r) !== sizeOf(s)) return false;
    const V = this.recs;
    if (!sameOutputs(V, r.outputs, s.outputs)) return false;
    const ri = [...r.inputs.keys()];
    const si = [...s.inputs.keys()];
    for (let i = 0; i < ri.length; i++) if (!typeEq(V[ri[i]].type, V[si[i]].type)) return false;
    const R = this.body(r);
    const S = this.body(s);
    for (let i = 0; i < R.size; i++) {
      const a = R.list[R.at + i];
      const b = S.list[S.at + i];
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
    let i = 0;
    // Segments in order, with the entries outside any segment between them.
    for (let n = 0; n <= this.segments.length; n++) {
      const s = this.segments[n];
      for (const upto = s ? s.start : E.length; i < upto; i++) apply(p, E[i], E[i].origin, vals);
      if (!s) break;
      const k = functions && s.kind >= 0 ? kinds[s.kind] : undefined;
      if (k && k.count >= 2) {
        if (!printed.has(k)) {
          this.printFunction(p, k, (scratch ??= new Array<XlaValue>(this.nValues)));
          printed.add(k);
        }
        p.setOrigin({ id: -1, op: 'call', scope: s.prefix, name: s.prefix });
        const results = p.call(k.name, [...s.inputs.keys()].map((id) => vals[id]), s.outputs.map((id) => this.recs[id].type));
        s.outputs.forEach((id, j) => (vals[id] = results[j]));
      } else {
        const b = this.body(s);
        for (let j = 0; j < b.size; j++) apply(p, b.list[b.at + j], b.list[b.at + j].origin, vals);
      }
      i = s.end;
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
    const b = this.body(s);
    for (let i = b.at; i < b.at + b.size; i++) {
      const e = b.list[i];
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
  vals[e.out.id] = (p[e.m] as (...xs: unknown[]) => XlaValue).apply(p, mapRecs(e.args, (x) => vals[x.id]));
}

/** An entry's arguments with each recorded value (alone or in a list of them) replaced by `f` of it. */
function mapRecs(args: readonly unknown[], f: (x: Rec) => unknown): unknown[] {
  return args.map((a) => (a instanceof Rec ? f(a) : Array.isArray(a) && a.length && a[0] instanceof Rec ? a.map(f) : a));
}

/** Instructions in a segment (a repeat has its template's). */
function sizeOf(s: Segment): number {
  return s.repeat ? s.repeat.template.end - s.repeat.template.seg.start : s.end - s.start;
}

/** The values used after two segments are the same instructions of each (local indices). */
function sameOutputs(V: readonly Rec[], a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (V[a[i]].local !== V[b[i]].local) return false;
  return true;
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
