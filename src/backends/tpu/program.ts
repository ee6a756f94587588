/**
 * Drives a graph through XLA builders by calling each node's own `xla` lowering (no switch on op names):
 * - `partitionGraph`: through the SPMD partitioner into any emitter (printer or cost recorder), giving the
 *   per-device program with explicit collectives;
 * - `emitWholeProgram`: straight into a printer with global shapes and `mhlo.sharding` on arguments and
 *   results, for XLA's own SPMD partitioner.
 */
import { Graph, Node, NodeId, Shape } from '../../ir/types';
import { nodeMap } from '../../ir/graph';
import { DimEnv, concreteShape, isFloat } from '../../ir/shape';
import { getOp } from '../../ir/op';
import { decodeNumber } from '../../ir/builder';
import { XlaBuilder, XlaType, XlaValue } from '../../ir/xla';
import { Mesh, Spec, axisSize, hloSharding } from './mesh';
import { CollectiveEvent, MutableSpec, ParamPolicy, Partitioner } from './partition';
import { InstrOrigin, SpmdEmitter } from './spmd';
import { TpuError } from './errors';
import { GraphLayers, GraphSegment, SegmentMemo, layersOf } from './replay';
import { Outliner, SegmentTemplate } from './outline';
import { f32NodesOf } from './precision';

export interface ProgramOptions {
  readonly env: DimEnv;
  /** Override the dtype of every float tensor (e.g. bf16 for TPU planning); default: the graph's own. */
  readonly floatDtype?: 'f32' | 'bf16';
  /** Training steps: the first backward node id (the partitioner gathers FSDP weights again from there on). */
  readonly backwardFrom?: NodeId;
  /**
   * Partition each repeated layer once and replay it for the others when the partitioner would see the same state
   * (default true; the result is the same either way — see replay.ts).
   */
  readonly replay?: boolean;
  /**
   * Nodes (by id) that stay f32 under a bf16 `floatDtype`: index arithmetic and a training step's optimizer. Set by
   * `partitionGraph` / `emitWholeProgram` from the graph itself (`f32NodesOf` in precision.ts); not an option to pass.
   */
  readonly keepF32?: Uint8Array;
}

const EMPTY: ReadonlyMap<NodeId, Node> = new Map();

/**
 * A node's type in the program. `floatDtype` (bf16 on TPU) applies to float *tensors*; float scalars keep the
 * graph's dtype (f32): the optimizer's step counter, learning rate, bias corrections and the loss/grad-norm sums
 * (a bf16 step counts exactly only to 256). Where the two meet, `matchDtypes` converts.
 */
export function nodeType(n: Node, o: ProgramOptions): XlaType {
  const t = n.type;
  const dtype = o.floatDtype && isFloat(t.dtype) && t.shape.length > 0 && !o.keepF32?.[n.id] ? o.floatDtype : t.dtype;
  // (a shape with no symbolic dims is its own concrete shape: shapes are immutable)
  return { dtype, shape: isStatic(t.shape) ? t.shape : concreteShape(t.shape, o.env) };
}

function isStatic(s: Shape): s is readonly number[] {
  for (let i = 0; i < s.length; i++) if (typeof s[i] !== 'number') return false;
  return true;
}

/**
 * Float operands converted to the dtype the node computes in (its own for a float result, else its first float
 * operand's), so an f32 scalar meeting a bf16 tensor is one `convert`, not a mismatched instruction. A no-op when
 * no float dtype is overridden (every dtype is then the graph's and already agrees); `cast` converts by itself.
 */
function matchDtypes(b: XlaBuilder, n: Node, ins: XlaValue[], out: XlaType, o: ProgramOptions, byId: ReadonlyMap<NodeId, Node>): XlaValue[] {
  if (!o.floatDtype || n.op === 'cast') return ins;
  // (loops, not filter/every: this runs for every node of both programs)
  let target = isFloat(out.dtype) ? out.dtype : undefined;
  let mixed = false;
  for (const v of ins) {
    const d = v.type.dtype;
    if (!isFloat(d)) continue;
    if (target === undefined) target = d;
    else if (d !== target) mixed = true;
  }
  if (!mixed || target === undefined) return ins;
  return ins.map((v, k) => {
    if (!isFloat(v.type.dtype) || v.type.dtype === target) return v;
    // A scalar constant is made again in the target dtype (the same literal; no convert instruction per use).
    const src = byId.get(n.inputs[k]);
    return src?.op === 'constant' ? b.constant(decodeNumber(src.attrs.value), { dtype: target, shape: v.type.shape }) : b.convert(v, target);
  });
}

/** `o` with the graph's f32 nodes when its floats are overridden to bf16 (see `f32NodesOf`). */
function withF32Nodes(g: Graph, o: ProgramOptions): ProgramOptions {
  return o.floatDtype === 'bf16' && !o.keepF32 ? { ...o, keepF32: f32NodesOf(g) } : o;
}

const sourceLists = new WeakMap<Graph, readonly Node[]>();
/** Program arguments in a fixed order: graph inputs, then parameters, each in graph order (memoised: graphs are immutable). */
function sources(g: Graph): readonly Node[] {
  let s = sourceLists.get(g);
  if (!s) sourceLists.set(g, (s = Object.freeze([...g.nodes.filter((n) => n.op === 'input'), ...g.nodes.filter((n) => n.op === 'param')])));
  return s;
}

/** Program arguments in a fixed order: graph inputs, then parameters, each in graph order (a new array). */
export function sourceNodes(g: Graph): Node[] {
  return [...sources(g)];
}

type Origin = NonNullable<InstrOrigin>;
/**
 * Emitters' origins of the nodes of one program, one object per node: all of a node's instructions name the same
 * object, so printers compute its location text once.
 */
function originTable(g: Graph): (n: Node) => Origin {
  const table = new Array<Origin | undefined>(g.nextId);
  return (n) => {
    let o = table[n.id];
    if (!o) table[n.id] = o = n.op === 'param' || n.op === 'input' ? { id: n.id, op: n.op, scope: n.scope, name: String(n.attrs.name) } : { id: n.id, op: n.op, scope: n.scope };
    return o;
  };
}

/** Batch-like dims of an input (the symbolic dim `batch`; else dim 0 of a rank ≥ 2 input) split over the data axes. */
export function inputSpec(n: Node, shape: readonly number[], mesh: Mesh, dataAxes: readonly string[]): MutableSpec {
  const spec: MutableSpec = shape.map(() => []);
  let d = n.type.shape.findIndex((x) => x === 'batch');
  if (d < 0 && n.type.shape.every((x) => typeof x === 'number') && shape.length >= 2) d = 0;
  if (d < 0) return spec;
  let k = 1;
  for (const a of dataAxes) {
    const s = axisSize(mesh, a);
    if (s > 1 && shape[d] % (k * s) === 0) {
      spec[d].push(a);
      k *= s;
    }
  }
  return spec;
}

/**
 * Inputs laid out like a parameter: an input named `<prefix>.<param name>` with the parameter's shape is that
 * parameter's per-parameter state (the training step's `adam.m.<param>` / `adam.v.<param>`), sharded with it.
 */
export function followedParams(g: Graph): Map<string, string> {
  const params = new Map<string, Node>();
  for (const n of g.nodes) if (n.op === 'param') params.set(String(n.attrs.name), n);
  const out = new Map<string, string>();
  if (!params.size) return out;
  for (const n of g.nodes) {
    if (n.op !== 'input') continue;
    const name = String(n.attrs.name);
    for (let i = name.indexOf('.'); i >= 0; i = name.indexOf('.', i + 1)) {
      const p = params.get(name.slice(i + 1));
      if (p && p.type.shape.length === n.type.shape.length && p.type.shape.every((d, k) => d === n.type.shape[k])) {
        out.set(name, name.slice(i + 1));
        break;
      }
    }
  }
  return out;
}

export interface PartitionResult {
  readonly partitioner: Partitioner;
  /**
   * The partitioner's value of every node (global type, spec) — e.g. for per-chip bytes of saved activations. A
   * replayed segment's inner nodes (used only inside it) may share the recorded segment's values (the same state);
   * partition with `replay: false` for every node's own.
   */
  readonly values: ReadonlyMap<NodeId, XlaValue>;
  readonly outputs: { readonly name: string; readonly node: NodeId; readonly local: XlaValue; readonly spec: Spec; readonly global: XlaType }[];
  readonly paramSpecs: ReadonlyMap<string, Spec>;
  readonly inputSpecs: ReadonlyMap<string, Spec>;
  /**
   * Layer segments partitioned and recorded, segments replayed from a recording, and of those the ones the emitter
   * took as one block (replay.ts).
   */
  readonly segments: { readonly recorded: number; readonly replayed: number; readonly blocks: number };
}

function lower(def: ReturnType<typeof getOp>, n: Node): NonNullable<ReturnType<typeof getOp>['xla']> {
  if (!def.xla) throw new TpuError(`op '${n.op}' (node %${n.id}${n.scope ? ' in ' + n.scope : ''}) has no XLA lowering`);
  return def.xla;
}

/**
 * Partition `g` over `mesh`. Parameters take the specs in `paramSpecs` when given; otherwise the policy places
 * each one at its first use (Megatron column/row split by the tensor-parallel axis, FSDP over the data axes).
 */
export function partitionGraph(
  g: Graph,
  mesh: Mesh,
  policy: ParamPolicy,
  emitter: SpmdEmitter,
  o: ProgramOptions,
  paramSpecs?: ReadonlyMap<string, Spec>,
  onCollective?: (e: CollectiveEvent) => void,
): PartitionResult {
  o = withF32Nodes(g, o);
  const layers = o.replay === false ? undefined : layersOf(g);
  const segments: ReadonlyMap<number, { seg: GraphSegment; end: number }> = layers?.segments ?? new Map();
  let memo: SegmentMemo | undefined;
  // With segments to replay, collective events also go to the recording of the segment being recorded.
  const events = segments.size
    ? (e: CollectiveEvent) => {
        if (memo!.isRecording) memo!.event(e);
        onCollective?.(e);
      }
    : onCollective;
  const p = new Partitioner(mesh, emitter, policy, events);
  const originOf = originTable(g);
  const vals = new Map<NodeId, XlaValue>();
  const inputSpecs = new Map<string, Spec>();
  const follows = followedParams(g);
  const srcs = sources(g);
  srcs.forEach((n, index) => {
    emitter.setOrigin(originOf(n));
    const t = nodeType(n, o);
    const name = String(n.attrs.name);
    if (n.op === 'input') {
      const given = paramSpecs?.get(name);
      const f = follows.get(name);
      if (!given && f) {
        vals.set(n.id, p.argFollowing(t, name, f, index));
        return;
      }
      if (!given && n.attrs.place_at_use === true) {
        vals.set(n.id, p.argAtFirstUse(t, name, inputSpec(n, t.shape, mesh, policy.dataAxes), index));
        return;
      }
      const spec = given ?? inputSpec(n, t.shape, mesh, policy.dataAxes);
      inputSpecs.set(name, spec);
      vals.set(n.id, p.arg(t, name, spec, false, index));
    } else vals.set(n.id, p.arg(t, name, paramSpecs?.get(name), true, index));
  });
  let forward = o.backwardFrom !== undefined;
  const nodesById = o.floatDtype ? nodeMap(g) : EMPTY;
  if (layers && segments.size) memo = new SegmentMemo(p, layers, originOf);
  // Nodes read outside their own segment (or outputs / taps): the values a replayed segment must hand on.
  const liveAfter = layers?.live ?? new Set<NodeId>();
  let recording: { seg: GraphSegment; end: number; pos: number } | undefined;
  for (let idx = 0; idx < g.nodes.length; idx++) {
    const n = g.nodes[idx];
    const def = getOp(n.op);
    if (def.source) continue;
    if (forward && n.id >= o.backwardFrom!) {
      p.forgetGathered();
      forward = false;
    }
    const s = segments.get(idx);
    // A segment that crosses into the backward (where FSDP gathers are forgotten) is partitioned as usual.
    if (s && memo && !(forward && s.seg.nodes[s.seg.nodes.length - 1].id >= o.backwardFrom!)) {
      const found = memo.find(s.seg, vals);
      if (found) {
        memo.replay(found, s.seg, vals, (m) => emitter.setOrigin(originOf(m)), onCollective, liveAfter);
        idx = s.end - 1;
        continue;
      }
      if (memo.shouldRecord(s.seg)) {
        memo.begin(s.seg, vals);
        recording = { ...s, pos: 0 };
      }
    }
    if (recording) memo!.at(recording.pos++);
    emitter.setOrigin(originOf(n));
    const out = nodeType(n, o);
    const v = lower(def, n)(p, matchDtypes(p, n, n.inputs.map((i) => vals.get(i)!), out, o, nodesById), n, out);
    vals.set(n.id, v);
    if (recording && recording.pos === recording.seg.nodes.length) {
      memo!.end(vals, liveAfter);
      recording = undefined;
    }
  }
  // An output named like a parameter or input is its next value (a training step's new weights and
  // optimizer state): it leaves in the same layout, so the step can be fed its own results.
  const byName = new Map(sources(g).map((n) => [String(n.attrs.name), n.id]));
  const byId = nodeMap(g);
  const outputs = g.outputs.map((out) => {
    const n = byId.get(out.node)!;
    emitter.setOrigin(originOf(n));
    const v = vals.get(out.node)!;
    const src = byName.get(out.name);
    const spec = src !== undefined && src !== out.node ? p.spec(vals.get(src)!) : p.spec(v);
    return { name: out.name, node: out.node, local: p.local(v, spec), spec, global: v.type };
  });
  // Arguments no instruction used are placed by default, so the signature lists every source in order.
  for (const n of srcs) {
    emitter.setOrigin(originOf(n));
    p.settleArg(vals.get(n.id)!);
  }
  emitter.setOrigin(undefined);
  const paramSpecsOut = new Map<string, Spec>(paramSpecs ? [...paramSpecs] : []);
  for (const [k, v] of p.decided) paramSpecsOut.set(k, v);
  // Parameters never used still get the policy's default placement.
  for (const n of g.nodes) if (n.op === 'param' && !paramSpecsOut.has(String(n.attrs.name))) paramSpecsOut.set(String(n.attrs.name), p.spec(vals.get(n.id)!));
  for (const [k, v] of p.decidedInputs) inputSpecs.set(k, v);
  for (const n of g.nodes) if (n.op === 'input' && !inputSpecs.has(String(n.attrs.name))) inputSpecs.set(String(n.attrs.name), p.spec(vals.get(n.id)!));
  return { partitioner: p, values: vals, outputs, paramSpecs: paramSpecsOut, inputSpecs, segments: { recorded: memo?.recorded ?? 0, replayed: memo?.replayed ?? 0, blocks: memo?.blocks ?? 0 } };
}

export interface WholeProgramEmitter extends XlaBuilder {
  arg(type: XlaType, info: { name: string; sharding?: string }): XlaValue;
  setOrigin(o: { id: number; op: string; scope: string; name?: string } | undefined): void;
}

/** The unpartitioned program: global shapes, with `mhlo.sharding` on arguments and results when given specs. */
export function emitWholeProgram(
  g: Graph,
  b: WholeProgramEmitter,
  o: ProgramOptions,
  shardings?: { mesh: Mesh; params: ReadonlyMap<string, Spec>; inputs: ReadonlyMap<string, Spec>; outputs: ReadonlyMap<string, Spec> },
  /** Receives every node's value when given (e.g. the SPMD simulator's reference run). */
  given?: Map<NodeId, XlaValue>,
): { name: string; value: XlaValue; sharding?: string }[] {
  o = withF32Nodes(g, o);
  const originOf = originTable(g);
  // (by id in an array: a Map of every node's value was a fifth of this loop's time)
  const vals = new Array<XlaValue>(g.nextId);
  for (const n of sources(g)) {
    b.setOrigin(originOf(n));
    const name = String(n.attrs.name);
    const spec = shardings ? (n.op === 'input' ? shardings.inputs : shardings.params).get(name) : undefined;
    vals[n.id] = b.arg(nodeType(n, o), { name, ...(spec && shardings ? { sharding: hloSharding(shardings.mesh, spec) } : {}) });
  }
  const nodesById = o.floatDtype ? nodeMap(g) : EMPTY;
  const lowerNode = (n: Node) => {
    const def = getOp(n.op);
    if (def.source) return;
    b.setOrigin(originOf(n));
    const out = nodeType(n, o);
    const ins = new Array<XlaValue>(n.inputs.length);
    for (let k = 0; k < ins.length; k++) ins[k] = vals[n.inputs[k]];
    vals[n.id] = lower(def, n)(b, matchDtypes(b, n, ins, out, o, nodesById), n, out);
  };
  // Into an outliner, a layer that repeats an earlier one is recorded as a repeat of it instead of lowered again.
  const repeats = b instanceof Outliner && !given ? new LayerRepeats(g, b, originOf) : undefined;
  for (let idx = 0; idx < g.nodes.length; idx++) {
    const s = repeats?.layers.segments.get(idx);
    if (!s) {
      lowerNode(g.nodes[idx]);
      continue;
    }
    const ext = repeats!.layers.externals(s.seg).map((id) => vals[id]);
    if (!repeats!.repeat(s.seg, ext, vals)) {
      const start = repeats!.outliner.position;
      for (let k = idx; k < s.end; k++) lowerNode(g.nodes[k]);
      repeats!.lowered(s.seg, start, ext, vals);
    }
    idx = s.end - 1;
  }
  b.setOrigin(undefined);
  if (given) for (const n of g.nodes) given.set(n.id, vals[n.id]);
  return g.outputs.map((out) => {
    const spec = shardings?.outputs.get(out.name);
    return { name: out.name, value: vals[out.node], ...(spec && shardings ? { sharding: hloSharding(shardings.mesh, spec) } : {}) };
  });
}

/**
 * Repeated layers of the whole program, recorded once (`Outliner.repeat`). The whole program's lowering of a node is
 * a function of the node (op, attributes, type), its scope and the types of its input values — there is no
 * partitioning state — so a layer segment with the same nodes, scopes below the layer and external value types
 * (and aliasing) as one lowered before lowers to the same instructions with other inputs.
 */
class LayerRepeats {
  readonly layers: GraphLayers;
  /** Templates by the structure (`GraphLayers.structureOf`) of the segment they were lowered from. */
  private readonly templates = new Map<GraphSegment, { seg: GraphSegment; t: SegmentTemplate }[]>();

  constructor(
    g: Graph,
    readonly outliner: Outliner,
    private readonly originOf: (n: Node) => Origin,
  ) {
    this.layers = layersOf(g);
  }

  /** Record `seg` as a repeat of a template if one fits and the outliner accepts (its live nodes' values go into `vals`). */
  repeat(seg: GraphSegment, ext: readonly XlaValue[], vals: XlaValue[]): boolean {
    for (const c of this.templates.get(this.layers.structureOf(seg)) ?? []) {
      if (!this.layers.sameScopes(c.seg, seg)) continue;
      const value = this.outliner.repeat(c.t, ext, seg.prefix, (pos) => this.originOf(seg.nodes[pos]));
      if (!value) continue;
      const live = this.layers.live;
      seg.nodes.forEach((n, pos) => {
        if (live.has(n.id)) vals[n.id] = value.node(pos);
      });
      return true;
    }
    return false;
  }

  /** After lowering `seg` from outliner position `start`: keep it as a template when the outliner can make one. */
  lowered(seg: GraphSegment, start: number, ext: readonly XlaValue[], vals: readonly XlaValue[]): void {
    const shape = this.layers.structureOf(seg);
    const list = this.templates.get(shape) ?? [];
    if (list.length >= MAX_TEMPLATES) return;
    const t = this.outliner.template(start, ext, seg.nodes.map((n) => vals[n.id]), seg.nodes.map((n) => this.originOf(n)));
    if (!t) return;
    list.push({ seg, t });
    this.templates.set(shape, list);
  }
}

/** At most this many templates per structure (segments that differ only in input types or scopes). */
const MAX_TEMPLATES = 4;
