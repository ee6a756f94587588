/**
 * Segment replay: partition each repeated layer once and replay it for the others.
 *
 * `partitionGraph` cuts the graph into segments (runs of nodes whose scope has the same layer prefix,
 * `model.layers.7`). The first time a segment shape is partitioned it is *recorded*: the instructions the
 * partitioner sends to its emitter (with the node each belongs to), the collective events, the values it creates,
 * and the sharding state that the segment leaves on the values it read from outside. A later segment is *replayed*
 * instead of partitioned only when it is the same computation (node for node: op, attributes, type, wiring; the
 * same kinds of values from outside) **and** the partitioner would see the same state: every value it reads from
 * outside (and each broadcast source behind one) has the same spec, pending sum, undecided placement, cached
 * reshardings and aliasing, and the partitioner's own state (forward/backward, partition-id indices) is the same.
 * Anything a recording refers to that cannot be mapped to the new segment makes that recording unusable — the
 * segment is then partitioned as usual. The result is exactly what partitioning would give (tested byte for byte,
 * with plans and layouts, against `replay: false` on several models, meshes, strategies and modes).
 */
import { f32NodesOf } from './precision';
import { Graph, Node, NodeId } from '../../ir/types';
import { getOp } from '../../ir/op';
import { nodeMap } from '../../ir/graph';
import { typeEq } from '../../ir/shape';
import { XlaValue } from '../../ir/xla';
import { Spec } from './mesh';
import { CollectiveEvent, GRADIENT, Info, MutableSpec, Partitioner } from './partition';
import { InstrOrigin, SpmdEmitter, isBlockSink } from './spmd';

/** A run of non-source nodes in one layer scope. */
export interface GraphSegment {
  readonly prefix: string;
  readonly pattern: string;
  readonly nodes: readonly Node[];
}

/** `model.layers.7.mlp` → [`model.layers.7`, `model.layers.*`]; no numeric component → ['', '']. */
export function segmentOf(scope: string): [string, string] {
  const parts = scope.split('.');
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i];
    if (p.length && p.charCodeAt(0) >= 48 && p.charCodeAt(0) <= 57 && /^\d+$/.test(p)) {
      return [parts.slice(0, i + 1).join('.'), [...parts.slice(0, i), '*'].join('.')];
    }
  }
  return ['', ''];
}

/** Where a pre-existing inner value sits in the segment's reachable values. */
type InnerPath = { readonly k: number; readonly where: 'local' } | { readonly k: number; readonly where: 'cache'; readonly key: string } | { readonly where: 'global' };

interface TraceEntry {
  readonly m: keyof SpmdEmitter;
  readonly args: unknown[];
  readonly out: XlaValue;
  readonly pos: number;
  /** Per argument: the slot of an inner value, the slots of a list of them, or undefined (a constant: as is). */
  slots?: (number | number[] | undefined)[];
}

interface InfoState {
  readonly spec: MutableSpec;
  readonly partial: Info['ownPartial'];
  readonly undecided: boolean;
  readonly local: XlaValue | undefined;
  readonly cache: readonly (readonly [string, XlaValue])[] | undefined;
}

interface Recording {
  readonly seg: GraphSegment;
  /** Dynamic key: the state the partitioner saw at the segment's start. */
  readonly key: string;
  readonly reach: readonly Info[];
  readonly inner: Map<XlaValue, InnerPath>;
  readonly trace: TraceEntry[];
  /**
   * The values a replay works with, as slots of one array: first the pre-existing inner values (`inner`, in its
   * order), then each trace entry's result. Set by `end`.
   */
  slotOf: Map<XlaValue, number>;
  slots: number;
  /** The recorded instructions as one block of the emitter (`BlockSink`), when it takes blocks and the trace has no arguments. */
  block?: unknown;
  readonly events: { e: CollectiveEvent; pos: number }[];
  readonly created: Info[];
  createdPost: InfoState[];
  reachPost: InfoState[];
  /** Per node position: its value, as created[k] (k ≥ 0) or reach[-k-1]. */
  valueOf: number[];
  /** Per created value: its broadcast source, as created[k] (k ≥ 0) or reach[-k-1]; NaN when not a broadcast. */
  bcastOf: number[];
  /**
   * Per node position: the recorded value can stand for the replayed node's (a node used only inside its segment,
   * whose recorded value nothing after the recorded segment can change: not used after it there either, and not the
   * broadcast source of a value that was). Otherwise a replayed inner node gets its own value.
   */
  shareable: boolean[];
  decided: [string, MutableSpec][];
  decidedInputs: [string, MutableSpec][];
  ok: boolean;
}

const stateOf = (i: Info): InfoState => ({
  spec: i.spec,
  partial: i.ownPartial,
  undecided: i.undecided,
  local: i.local,
  cache: i.cache ? [...i.cache] : undefined,
});

const specText = (s: Spec | undefined) => (s ? s.map((a) => a.join('.')).join('|') : '-');

/**
 * The values a segment can reach from its external inputs (their broadcast sources too), in a canonical order, and
 * a fingerprint of everything the partitioner reads of them — including which of them are the same value and
 * which inner values they share.
 */
function reachOf(p: Partitioner, ext: readonly Info[], globals: Set<XlaValue>): { reach: Info[]; key: string; paths: Map<XlaValue, InnerPath> } {
  const index = new Map<Info, number>();
  const reach: Info[] = [];
  const visit = (i: Info): number => {
    let k = index.get(i);
    if (k === undefined) {
      index.set(i, (k = reach.length));
      reach.push(i);
    }
    return k;
  };
  const order = ext.map(visit);
  for (let j = 0; j < reach.length; j++) if (reach[j].bcast) visit(reach[j].bcast!.src);
  const paths = new Map<XlaValue, InnerPath>();
  const innerId = new Map<XlaValue, string>();
  const innerText = (v: XlaValue | undefined, path: InnerPath): string => {
    if (!v) return '-';
    if (globals.has(v)) return 'G';
    let id = innerId.get(v);
    if (id === undefined) {
      innerId.set(v, (id = `#${innerId.size}`));
      paths.set(v, path);
    }
    return id;
  };
  // Which reachable values carry the same parameter / input name (the replay maps names through them).
  const nameId = new Map<string, number>();
  const nameText = (x: string | undefined, tag: string) => {
    if (x === undefined) return '';
    let id = nameId.get(x);
    if (id === undefined) nameId.set(x, (id = nameId.size));
    return `${tag}${id}`;
  };
  const parts = reach.map((i, k) => {
    const cache = i.cache ? [...i.cache.keys()].sort().map((c) => `${c}=${innerText(i.cache!.get(c), { k, where: 'cache', key: c })}`).join(',') : '';
    return [
      `${i.global.dtype}[${i.global.shape.join(',')}]`,
      specText(i.spec),
      i.ownPartial ? `${i.ownPartial.reducer}:${i.ownPartial.axes.join('.')}` : '',
      i.splat ?? '',
      i.bcast ? `b${i.bcast.dims.join('.')}>${index.get(i.bcast.src)}` : '',
      i.generated ? 'g' : '',
      nameText(i.param, 'w'),
      i.undecided ? 'u' : '',
      i.follows !== undefined ? `f:${specText(p.decided.get(i.follows))}${nameText(i.follows, 'w')}` : '',
      nameText(i.input, 'in'),
      i.fallback ? `fb:${specText(i.fallback)}` : '',
      i.argIndex !== undefined ? 'a' : '',
      innerText(i.local, { k, where: 'local' }),
      cache,
    ].join('/');
  });
  return { reach, key: `${p.globalKey()}||${order.join(',')}||${parts.join('\n')}`, paths };
}

/** Deep equality of node attributes (plain JSON-like data). */
function sameAttr(a: unknown, b: unknown): boolean {
  if (a === b) return typeof a !== 'number' || Object.is(a, b); // a constant 0 is not a constant -0
  if (typeof a === 'number' && typeof b === 'number') return Number.isNaN(a) && Number.isNaN(b);
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!sameAttr(a[i], b[i])) return false;
    return true;
  }
  // (counting keys instead of listing them: this runs for every node of every replayed segment)
  let keys = 0;
  for (const k in a) {
    if (!Object.prototype.hasOwnProperty.call(b, k) || !sameAttr((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])) return false;
    keys++;
  }
  for (const _ in b) keys--;
  return keys === 0;
}


/**
 * Node for node the same computation: op, attributes, type, inputs from inside (same position) or outside (the same
 * k-th external, of the same type; a constant with the same attributes, since dtype matching reads its value), and
 * the same precision in a bf16 program (`f32`: `f32NodesOf`) for every node and external.
 */
function sameStructure(r: GraphSegment, s: GraphSegment, byId: ReadonlyMap<NodeId, Node>, f32: Uint8Array): boolean {
  if (r.nodes.length !== s.nodes.length || r.pattern !== s.pattern) return false;
  const rPos = new Map<NodeId, number>();
  const sPos = new Map<NodeId, number>();
  const rExt = new Map<NodeId, number>();
  const sExt = new Map<NodeId, number>();
  for (let j = 0; j < r.nodes.length; j++) {
    const a = r.nodes[j];
    const b = s.nodes[j];
    if (a.op !== b.op || a.inputs.length !== b.inputs.length || f32[a.id] !== f32[b.id] || !typeEq(a.type, b.type) || !sameAttr(a.attrs, b.attrs)) return false;
    for (let k = 0; k < a.inputs.length; k++) {
      const x = a.inputs[k];
      const y = b.inputs[k];
      const px = rPos.get(x);
      const py = sPos.get(y);
      if (px !== undefined || py !== undefined) {
        if (px !== py) return false;
        continue;
      }
      let ex = rExt.get(x);
      if (ex === undefined) rExt.set(x, (ex = rExt.size));
      let ey = sExt.get(y);
      if (ey === undefined) sExt.set(y, (ey = sExt.size));
      if (ex !== ey) return false;
      const nx = byId.get(x)!;
      const ny = byId.get(y)!;
      if (nx.op !== ny.op || f32[x] !== f32[y] || !typeEq(nx.type, ny.type)) return false;
      if (nx.op === 'constant' && !sameAttr(nx.attrs, ny.attrs)) return false;
    }
    rPos.set(a.id, j);
    sPos.set(b.id, j);
  }
  return true;
}

/** External inputs of a segment (node ids, first use first). */
function externalsOf(seg: GraphSegment): NodeId[] {
  const inside = new Set(seg.nodes.map((n) => n.id));
  const out: NodeId[] = [];
  const seen = new Set<NodeId>();
  for (const n of seg.nodes) {
    for (const i of n.inputs) {
      if (inside.has(i) || seen.has(i)) continue;
      seen.add(i);
      out.push(i);
    }
  }
  return out;
}

/** Shorter runs of a layer scope are handled as usual (not worth recording or repeating). */
const MIN_SEGMENT_NODES = 4;

/** A graph's layer segments, and what partitioning and lowering share about them (`layersOf`). */
export interface GraphLayers {
  /**
   * Runs of non-source nodes of one layer scope (`model.layers.7…`), by the index of their first node in `g.nodes`
   * (`end`: one past the index of their last node; source nodes in between belong to no segment).
   */
  readonly segments: ReadonlyMap<number, { readonly seg: GraphSegment; readonly end: number }>;
  /** Nodes read outside their own segment, outputs and taps: the values a segment not handled node by node must hand on. */
  readonly live: ReadonlySet<NodeId>;
  /** The first segment with the same structure as `seg` (`sameStructure`): equal for segments that are the same computation. */
  structureOf(seg: GraphSegment): GraphSegment;
  /** `externalsOf(seg)`, once. */
  externals(seg: GraphSegment): readonly NodeId[];
  /**
   * Node for node the same scopes below the layer (`mlp` in `model.layers.4.mlp`). `structureOf` ignores scopes; what
   * is located at its nodes (printed locations, layer functions) needs them equal too.
   */
  sameScopes(a: GraphSegment, b: GraphSegment): boolean;
}

const layerCache = new WeakMap<Graph, GraphLayers>();

/** The layer segments of `g` (memoised per graph object: graphs are immutable). */
export function layersOf(g: Graph): GraphLayers {
  let l = layerCache.get(g);
  if (!l) layerCache.set(g, (l = findLayers(g)));
  return l;
}

function findLayers(g: Graph): GraphLayers {
  const segments = new Map<number, { seg: GraphSegment; end: number }>();
  const scopes = new Map<string, [string, string]>();
  let cur: { start: number; end: number; prefix: string; pattern: string; nodes: Node[] } | undefined;
  const close = () => {
    if (cur && cur.nodes.length >= MIN_SEGMENT_NODES) segments.set(cur.start, { seg: { prefix: cur.prefix, pattern: cur.pattern, nodes: cur.nodes }, end: cur.end });
    cur = undefined;
  };
  g.nodes.forEach((n, idx) => {
    if (getOp(n.op).source) return;
    let sp = scopes.get(n.scope);
    if (!sp) scopes.set(n.scope, (sp = segmentOf(n.scope)));
    if (!sp[0]) return close();
    if (!cur || cur.prefix !== sp[0]) {
      close();
      cur = { start: idx, end: idx + 1, prefix: sp[0], pattern: sp[1], nodes: [] };
    }
    cur.nodes.push(n);
    cur.end = idx + 1;
  });
  close();

  const live = new Set<NodeId>([...g.outputs.map((x) => x.node), ...Object.values(g.taps)]);
  const segOf: (GraphSegment | undefined)[] = new Array(g.nextId);
  for (const { seg } of segments.values()) for (const n of seg.nodes) segOf[n.id] = seg;
  if (segments.size) {
    for (const n of g.nodes) {
      const own = segOf[n.id];
      for (const i of n.inputs) if (segOf[i] !== own) live.add(i);
    }
  }

  const byId = nodeMap(g);
  const f32 = f32NodesOf(g);
  const structure = new Map<GraphSegment, GraphSegment>();
  /** Structures met so far, by their op sequence (only those can be the same computation). */
  const bySignature = new Map<string, GraphSegment[]>();
  const externals = new Map<GraphSegment, readonly NodeId[]>();
  /** Scope → the part below its layer prefix (every segment node's scope is in `scopes` already). */
  const rel = new Map<string, string>();
  const relScope = (scope: string) => {
    let r = rel.get(scope);
    if (r === undefined) rel.set(scope, (r = scope.slice(scopes.get(scope)![0].length)));
    return r;
  };
  return {
    segments,
    live,
    structureOf(seg) {
      let rep = structure.get(seg);
      if (!rep) {
        let sig = seg.pattern;
        for (const n of seg.nodes) sig += ' ' + n.op;
        let list = bySignature.get(sig);
        if (!list) bySignature.set(sig, (list = []));
        rep = list.find((r) => sameStructure(r, seg, byId, f32));
        if (!rep) list.push((rep = seg));
        structure.set(seg, rep);
      }
      return rep;
    },
    externals(seg) {
      let e = externals.get(seg);
      if (!e) externals.set(seg, (e = externalsOf(seg)));
      return e;
    },
    sameScopes(a, b) {
      if (a.nodes.length !== b.nodes.length) return false;
      for (let j = 0; j < a.nodes.length; j++) if (relScope(a.nodes[j].scope) !== relScope(b.nodes[j].scope)) return false;
      return true;
    },
  };
}

const isInner = (a: unknown): a is XlaValue => typeof a === 'object' && a !== null && 'ref' in a && 'type' in a && !Array.isArray(a);

/** Number the recording's values (`Recording.slotOf`) and note, per trace argument, which slot(s) it reads. */
function compileSlots(rec: Recording): void {
  const slotOf = rec.slotOf;
  let n = 0;
  for (const v of rec.inner.keys()) slotOf.set(v, n++);
  for (const t of rec.trace) {
    if (t.m !== 'arg') {
      t.slots = t.args.map((a) => (Array.isArray(a) ? (a.length && isInner(a[0]) ? a.map((x) => slotOf.get(x)!) : undefined) : isInner(a) ? slotOf.get(a)! : undefined));
    }
    slotOf.set(t.out, n++);
  }
  rec.slots = n;
}

/** At most this many recordings of one segment shape (each with another starting state). */
const MAX_RECORDINGS = 4;

export class SegmentMemo {
  /** Tests only: match recordings by structure alone, ignoring the starting state (gives wrong programs). */
  static ignoreStateForTests = false;
  /** Recordings per segment structure (`GraphLayers.structureOf`). */
  private readonly recordingsOf = new Map<GraphSegment, Recording[]>();
  /** Node position being partitioned while recording (trace entries and events are tagged with it). */
  private pos = -1;
  private recording: Recording | undefined;
  /** While recording: the placements decided before the segment, and the real emitter behind the recording wrapper. */
  private before: { decided: Set<string>; inputs: Set<string>; inner: SpmdEmitter; mark: unknown } | undefined;
  /** The starting state `find` computed, for `begin` when it records that same segment. */
  private lastState: { seg: GraphSegment; state: ReturnType<typeof reachOf> } | undefined;
  replayed = 0;
  recorded = 0;
  /** Replays the emitter took as one block. */
  blocks = 0;

  constructor(
    private readonly p: Partitioner,
    private readonly layers: GraphLayers,
    /** The origin the partitioner gives a node's instructions. */
    private readonly originOf: (n: Node) => InstrOrigin,
  ) {}

  /** The state the partitioner would start `seg` from (see reachOf). */
  private startState(seg: GraphSegment, vals: ReadonlyMap<NodeId, XlaValue>): ReturnType<typeof reachOf> {
    if (this.lastState?.seg === seg) return this.lastState.state;
    const ext = this.layers.externals(seg).map((id) => this.p.info(vals.get(id)!));
    const state = reachOf(this.p, ext, this.p.globalValues());
    this.lastState = { seg, state };
    return state;
  }

  private recordings(seg: GraphSegment): Recording[] {
    const shape = this.layers.structureOf(seg);
    let list = this.recordingsOf.get(shape);
    if (!list) this.recordingsOf.set(shape, (list = []));
    return list;
  }

  /** Worth recording: its shape has fewer than MAX_RECORDINGS recordings. */
  shouldRecord(seg: GraphSegment): boolean {
    return this.recordings(seg).length < MAX_RECORDINGS;
  }

  /** A recording this segment can replay (same structure, same starting state), or undefined. */
  find(seg: GraphSegment, vals: ReadonlyMap<NodeId, XlaValue>): { rec: Recording; reach: Info[] } | undefined {
    const cands = this.recordings(seg).filter((r) => r.ok);
    if (!cands.length) return undefined;
    const { reach, key } = this.startState(seg, vals);
    const rec = cands.find((r) => SegmentMemo.ignoreStateForTests || r.key === key);
    return rec ? { rec, reach } : undefined;
  }

  /** Start recording `seg` (partitioned as usual by the caller, node by node, with `at(pos)` before each). */
  begin(seg: GraphSegment, vals: ReadonlyMap<NodeId, XlaValue>): void {
    const { reach, key, paths } = this.startState(seg, vals);
    this.lastState = undefined;
    for (const g of this.p.globalValues()) paths.set(g, { where: 'global' });
    const rec: Recording = {
      seg, key, reach, inner: paths, trace: [], slotOf: new Map(), slots: 0, events: [], created: [], createdPost: [], reachPost: [], valueOf: [], bcastOf: [], shareable: [],
      decided: [], decidedInputs: [], ok: true,
    };
    this.recording = rec;
    const mark = isBlockSink(this.p.inner) ? this.p.inner.blockStart() : undefined;
    this.before = { decided: new Set(this.p.decided.keys()), inputs: new Set(this.p.decidedInputs.keys()), inner: this.p.inner, mark };
    const real = this.p.inner;
    const trace = rec.trace;
    // A wrapper that forwards every instruction to the real emitter and remembers it (with its node position).
    this.p.inner = new Proxy(real, {
      get: (t, m: keyof SpmdEmitter) => {
        const f = t[m] as unknown;
        if (typeof f !== 'function' || m === 'setOrigin') return f;
        return (...args: unknown[]) => {
          const out = (f as (...xs: unknown[]) => XlaValue).apply(t, args);
          trace.push({ m, args, out, pos: this.pos });
          return out;
        };
      },
    });
    this.p.onCreate = (i) => rec.created.push(i);
  }

  /** The node position about to be partitioned (recording). */
  at(pos: number): void {
    this.pos = pos;
  }

  /** Collective events go through here while recording. */
  event(e: CollectiveEvent): void {
    this.recording?.events.push({ e, pos: this.pos });
  }

  get isRecording(): boolean {
    return this.recording !== undefined;
  }

  /** End the recording: snapshot what the segment left behind and check that all of it can be mapped to another segment. */
  end(vals: ReadonlyMap<NodeId, XlaValue>, live: ReadonlySet<NodeId>): void {
    const rec = this.recording!;
    this.recording = undefined;
    const before = this.before!;
    this.before = undefined;
    this.p.inner = before.inner;
    this.p.onCreate = undefined;
    this.recorded++;
    for (const [k, v] of this.p.decided) if (!before.decided.has(k)) rec.decided.push([k, v]);
    for (const [k, v] of this.p.decidedInputs) if (!before.inputs.has(k)) rec.decidedInputs.push([k, v]);
    rec.createdPost = rec.created.map(stateOf);
    rec.reachPost = rec.reach.map(stateOf);
    const createdIdx = new Map(rec.created.map((c, k) => [c, k]));
    const reachIdx = new Map(rec.reach.map((c, k) => [c, k]));
    rec.valueOf = rec.seg.nodes.map((n) => {
      const v = vals.get(n.id) as Info | undefined;
      if (!v) return (rec.ok = false), 0;
      const c = createdIdx.get(v);
      if (c !== undefined) return c;
      const r = reachIdx.get(v);
      if (r !== undefined) return -r - 1;
      return (rec.ok = false), 0;
    });
    // Everything the recording refers to must be mappable: inner values made by the trace or reachable, Infos
    // created or reachable, parameter / input names of reachable values.
    const made = new Set<XlaValue>(rec.trace.map((t) => t.out));
    const innerOk = (v: XlaValue | undefined) => v === undefined || made.has(v) || rec.inner.has(v);
    const names = new Set<string>();
    const argIndexes = new Set<number>();
    for (const i of rec.reach) {
      if (i.param !== undefined) names.add(i.param);
      if (i.input !== undefined) names.add(i.input);
      if (i.argIndex !== undefined) argIndexes.add(i.argIndex);
    }
    for (const t of rec.trace) {
      for (const a of t.args) {
        if (Array.isArray(a)) {
          for (const x of a) if (isInner(x) && !innerOk(x)) rec.ok = false;
        } else if (isInner(a) && !innerOk(a)) rec.ok = false;
      }
      if (t.m === 'arg') {
        const info = t.args[1] as { name: string; index?: number };
        if (!names.has(info.name) || (info.index !== undefined && !argIndexes.has(info.index))) rec.ok = false;
      }
    }
    const stateOk = (s: InfoState) => innerOk(s.local) && (s.cache ?? []).every(([, v]) => innerOk(v));
    if (!rec.createdPost.every(stateOk) || !rec.reachPost.every(stateOk)) rec.ok = false;
    rec.bcastOf = rec.created.map((c, k) => {
      if (!c.bcast) return NaN;
      const ci = createdIdx.get(c.bcast.src);
      if (ci !== undefined && ci < k) return ci;
      const r = reachIdx.get(c.bcast.src);
      if (r !== undefined) return -r - 1;
      rec.ok = false;
      return NaN;
    });
    // Recorded values that later partitioning can change: those of nodes used after the segment, and (through
    // broadcasts) their sources.
    const changes = new Set<number>();
    const mark = (k: number) => {
      for (; k >= 0 && !changes.has(k); k = rec.bcastOf[k]) changes.add(k);
    };
    rec.seg.nodes.forEach((n, j) => {
      if (rec.valueOf[j] >= 0 && live.has(n.id)) mark(rec.valueOf[j]);
    });
    rec.shareable = rec.seg.nodes.map((_, j) => rec.valueOf[j] < 0 || !changes.has(rec.valueOf[j]));
    for (const c of rec.created) {
      if (c.param !== undefined && !names.has(c.param)) rec.ok = false;
      if (c.follows !== undefined || c.input !== undefined || c.fallback !== undefined || c.argIndex !== undefined) rec.ok = false;
    }
    for (const { e } of rec.events) if (e.param !== undefined && e.param !== GRADIENT && !names.has(e.param)) rec.ok = false;
    for (const [k] of [...rec.decided, ...rec.decidedInputs]) if (!names.has(k)) rec.ok = false;
    if (rec.ok) compileSlots(rec);
    // (a trace with arguments stays instruction by instruction: each layer's arguments carry its own names)
    const real = before.inner;
    if (rec.ok && before.mark !== undefined && isBlockSink(real) && rec.trace.length && !rec.trace.some((t) => t.m === 'arg')) {
      rec.block = real.makeBlock(before.mark, [...rec.inner.keys()], {
        pos: Int32Array.from(rec.trace, (t) => t.pos),
        origins: rec.seg.nodes.map(this.originOf),
        types: rec.trace.map((t) => t.out.type),
      });
    }
    this.recordings(rec.seg).push(rec);
  }

  /**
   * Replay `rec` for `seg`: its instructions into the partitioner's emitter — as one block when the emitter takes it
   * (`BlockSink`), else one by one with origins set per node by `origin` —, its events, its values (new ones for the
   * created, the new segment's own for the reachable), the state it left on reachable values, and the placements it
   * decided.
   */
  replay(
    found: { rec: Recording; reach: Info[] },
    seg: GraphSegment,
    vals: Map<NodeId, XlaValue>,
    origin: (n: Node) => void,
    onCollective: ((e: CollectiveEvent) => void) | undefined,
    /** Nodes used after their segment (by later nodes, as outputs or taps). */
    live: ReadonlySet<NodeId>,
  ): void {
    const { rec, reach } = found;
    const p = this.p;
    const slots = new Array<XlaValue>(rec.slots);
    let n = 0;
    for (const [v, path] of rec.inner) {
      slots[n++] = path.where === 'global' ? v : path.where === 'local' ? reach[path.k].local! : reach[path.k].cache!.get(path.key)!;
    }
    const names = new Map<string, string>();
    const argIndex = new Map<number, number>();
    rec.reach.forEach((r, k) => {
      const l = reach[k];
      if (r.param !== undefined) names.set(r.param, l.param!);
      if (r.input !== undefined) names.set(r.input, l.input!);
      if (r.argIndex !== undefined) argIndex.set(r.argIndex, l.argIndex!);
    });
    const name = (x: string) => names.get(x) ?? x;
    const inner = p.inner;
    const nInner = n;
    // The recorded instructions as one block, when the emitter takes it (their values are made when read).
    const inputs = rec.block !== undefined ? slots.slice(0, nInner) : [];
    // (a block is located as the recorded segment was: only for a segment with the same scopes below the layer)
    const block =
      rec.block !== undefined && this.layers.sameScopes(rec.seg, seg) && isBlockSink(inner) && inner.canRepeatBlock(rec.block, inputs, seg.prefix)
        ? inner.repeatBlock(rec.block, inputs, seg.prefix, (pos) => this.originOf(seg.nodes[pos]))
        : undefined;
    const slot = block ? (i: number) => (slots[i] ??= block(i - nInner)) : (i: number) => slots[i];
    if (block) {
      this.blocks++;
      for (const { e, pos } of rec.events) {
        origin(seg.nodes[pos]);
        onCollective?.(e.param !== undefined ? { ...e, param: name(e.param) } : e);
      }
      origin(seg.nodes[seg.nodes.length - 1]); // (where instruction-by-instruction replay leaves the emitter)
    } else {
      // Instruction by instruction, each located at its node, the events after their node's instructions.
      let t = 0;
      let ev = 0;
      for (let pos = 0; pos < seg.nodes.length; pos++) {
        origin(seg.nodes[pos]);
        for (; t < rec.trace.length && rec.trace[t].pos === pos; t++) {
          const e = rec.trace[t];
          let args: unknown[];
          if (e.m === 'arg') {
            const info = e.args[1] as { name: string; index?: number; spec?: Spec };
            args = [e.args[0], { ...info, name: name(info.name), ...(info.index !== undefined ? { index: argIndex.get(info.index)! } : {}) }];
          } else {
            args = new Array(e.args.length);
            for (let k = 0; k < args.length; k++) {
              const sl = e.slots![k];
              args[k] = sl === undefined ? e.args[k] : typeof sl === 'number' ? slots[sl] : sl.map((j) => slots[j]);
            }
          }
          slots[n++] = (inner[e.m] as (...xs: unknown[]) => XlaValue).apply(inner, args);
        }
        for (; ev < rec.events.length && rec.events[ev].pos === pos; ev++) {
          const e = rec.events[ev].e;
          onCollective?.(e.param !== undefined ? { ...e, param: name(e.param) } : e);
        }
      }
    }
    const slotOf = rec.slotOf;
    const mapV = (v: XlaValue | undefined) => (v === undefined ? undefined : slot(slotOf.get(v)!));
    const apply = (i: Info, s: InfoState) => {
      i.spec = s.spec;
      i.ownPartial = s.partial;
      i.undecided = s.undecided;
      i.local = mapV(s.local);
      i.cache = s.cache ? new Map(s.cache.map(([k, v]) => [k, mapV(v)!])) : undefined;
    };
    // New values only for what outlives the segment: the values of nodes used after it, and the broadcast sources
    // behind them. A value used only inside is never looked up again; its node keeps the recording's (same state).
    const created: (Info | undefined)[] = new Array(rec.created.length);
    const cloneOf = (k: number): Info => {
      let c = created[k];
      if (c) return c;
      const src = rec.created[k];
      const b = rec.bcastOf[k];
      const bcastSrc = Number.isNaN(b) ? undefined : b >= 0 ? cloneOf(b) : reach[-b - 1];
      c = p.cloneInfo(src, bcastSrc, src.param !== undefined ? name(src.param) : undefined);
      apply(c, rec.createdPost[k]);
      return (created[k] = c);
    };
    rec.reach.forEach((_, k) => apply(reach[k], rec.reachPost[k]));
    seg.nodes.forEach((n, j) => {
      const v = rec.valueOf[j];
      if (v >= 0 && (live.has(n.id) || !rec.shareable[j])) cloneOf(v);
    });
    // (an inner node that is the broadcast source of a value handed on gets that value's source, its own)
    seg.nodes.forEach((n, j) => {
      const v = rec.valueOf[j];
      vals.set(n.id, v < 0 ? reach[-v - 1] : created[v] ?? rec.created[v]);
    });
    for (const [k, v] of rec.decided) p.decided.set(name(k), v.map((a) => [...a]));
    for (const [k, v] of rec.decidedInputs) p.decidedInputs.set(name(k), v.map((a) => [...a]));
    this.replayed++;
  }
}
