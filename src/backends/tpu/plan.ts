/**
 * Plans: a graph, a chip, a topology, a logical mesh and a sharding strategy → the partitioned program's
 * cost. Per op: HloCostAnalysis FLOPs/transcendentals and fusion-aware bytes of the local program, roofline
 * time (matmul FLOPs at the MXU peak × an achievable fraction, other FLOPs at the vector rate, bytes at HBM
 * bandwidth); collectives from the torus formulas; FSDP weight gathers overlapped with each layer's compute;
 * memory per chip (parameters, gradients, optimizer state, activations by remat policy, KV cache for
 * decode); totals (step time, tokens/s/chip, MFU, days for token budgets).
 */
import { didYouMean } from '../../../grammar/diagnostics';
import { Graph, Node } from '../../ir/types';
import { nodeMap } from '../../ir/graph';
import { checkDecodable } from './decode';
import { ChipSpec, getChip } from './chips';
import { Mesh, Spec, Topology, defaultTopology, makeMesh, meshMapping, meshText, parseTopology, axisSize } from './mesh';
import { CollectiveEvent, ParamPolicy } from './partition';
import { partitionGraph, emitWholeProgram, PartitionResult } from './program';
import { CostRecorder, bytesAt, fusedBytes, instrIndex } from './record';
import { SpmdEmitter, TeeEmitter } from './spmd';
import { XlaValue } from '../../ir/xla';
import { collectiveTime } from './collectives';
import { TpuError } from './errors';
import { trainingStep, TrainingStepInfo } from '../../train/step';
import { isOptimizerState } from '../../train/optimizer';
import { isFloat } from '../../ir/shape';
import { f32NodesOf } from './precision';

export type Mode = 'forward' | 'train' | 'decode';
/** The autodiff engineer's policy names (src/train): save everything, save layer inputs only, save matmul outputs. */
export type Remat = 'save-all' | 'layer-inputs' | 'matmul-outputs';
export const REMATS: readonly Remat[] = ['save-all', 'layer-inputs', 'matmul-outputs'];

export interface PlanOptions {
  readonly chip: string;
  readonly topology?: string;
  /** Chip count when no topology is given. */
  readonly chips?: number;
  readonly mesh?: string;
  readonly strategy?: string;
  readonly mode?: Mode;
  readonly remat?: Remat;
  /** Bytes of optimizer-related state per parameter: 'mixed' = bf16 weights + bf16 grads + fp32 master, m, v (16 B); 'bf16' = 2 + 2 + 8 (12 B). */
  readonly precision?: 'mixed' | 'bf16';
  /** Overlap FSDP weight gathers (and gradient reduce-scatters) with compute. */
  readonly overlap?: boolean;
  /** Fraction of the MXU peak dense matmuls reach (calibration, docs/tpu.md). */
  readonly matmulEfficiency?: number;
  /** Decode: context length the KV cache holds. */
  readonly context?: number;
  /** Token budgets to convert into days (training). */
  readonly tokenBudgets?: readonly number[];
  /** Partition repeated layers once and replay them (default true; the same plan either way — replay.ts). */
  readonly replay?: boolean;
}

export const DEFAULT_MATMUL_EFFICIENCY = 0.9;

export interface Strategy {
  readonly name: string;
  readonly policy: ParamPolicy;
}

/** Mesh axes named model / tensor / tp carry tensor parallelism; every other axis is a data axis. */
export const TP_AXIS_NAMES = ['model', 'tensor', 'tp', 'mp'];
/** Data axes that never shard parameters, even under FSDP (pure data parallelism, e.g. across slices over DCN). */
export const REPLICA_AXIS_NAMES = ['replica', 'dcn', 'pod', 'slice'];

/** Names of data-parallel / FSDP axes (the others are TP_AXIS_NAMES and REPLICA_AXIS_NAMES). */
export const DATA_AXIS_NAMES = ['data', 'fsdp', 'batch', 'dp'];

/** An axis name is its role: a misspelled `modle` used to become a silent FSDP axis. */
function checkAxisNames(mesh: Mesh): void {
  const known = [...DATA_AXIS_NAMES, ...TP_AXIS_NAMES, ...REPLICA_AXIS_NAMES];
  for (const a of mesh.axes) {
    if (known.includes(a.name)) continue;
    const hint = known.includes(a.name.toLowerCase()) ? ` (did you mean '${a.name.toLowerCase()}'? axis names are lower case)` : didYouMean(a.name, known);
    throw new TpuError(
      `--mesh: unknown axis name '${a.name}'${hint}; an axis's name is its role: ${DATA_AXIS_NAMES.join('/')} (data parallel, FSDP), ` +
        `${TP_AXIS_NAMES.join('/')} (tensor parallel), ${REPLICA_AXIS_NAMES.join('/')} (data parallel, parameters replicated)`,
    );
  }
}

export function parseStrategy(text: string | undefined, mesh: Mesh): Strategy {
  checkAxisNames(mesh);
  const tpAxes = mesh.axes.filter((a) => TP_AXIS_NAMES.includes(a.name));
  if (tpAxes.length > 1) throw new TpuError(`--mesh: at most one tensor-parallel axis (${TP_AXIS_NAMES.join('/')}), got ${tpAxes.map((a) => a.name).join(', ')}`);
  const tp = tpAxes[0]?.size && tpAxes[0].size > 1 ? tpAxes[0].name : undefined;
  const dataAxes = mesh.axes.filter((a) => !TP_AXIS_NAMES.includes(a.name)).map((a) => a.name);
  const name = text ?? (tp ? 'fsdp+tp' : 'fsdp');
  const parts = name.split('+').map((s) => s.trim().toLowerCase());
  const known = ['dp', 'fsdp', 'zero3', 'tp'];
  for (const p of parts) {
    if (!known.includes(p)) throw new TpuError(`--strategy: ${p ? `unknown part '${p}' in '${name}'` : `'${name}' has an empty part`} (use dp, fsdp, tp or a combination such as fsdp+tp)`);
  }
  const fsdp = parts.includes('fsdp') || parts.includes('zero3');
  if (fsdp && parts.includes('dp')) throw new TpuError(`--strategy ${name}: dp (replicated parameters) and fsdp (sharded parameters) exclude each other`);
  const wantsTp = parts.includes('tp');
  if (wantsTp && !tp) throw new TpuError(`--strategy ${name}: tensor parallelism needs a mesh axis named model (or tensor/tp) of size > 1, e.g. --mesh data=64,model=4`);
  if (!wantsTp && tp) throw new TpuError(`--strategy ${name} leaves mesh axis '${tp}' (${axisSize(mesh, tp)}) unused; add +tp`);
  const fsdpAxes = dataAxes.filter((a) => !REPLICA_AXIS_NAMES.includes(a));
  return { name: parts.join('+'), policy: { dataAxes, fsdp, fsdpAxes, ...(wantsTp ? { tpAxis: tp } : {}) } };
}

export function resolveTopology(chip: ChipSpec, o: PlanOptions): Topology {
  if (o.topology) {
    const t = parseTopology(chip, o.topology);
    if (o.chips && o.chips !== t.chips) throw new TpuError(`--chips ${o.chips} and --topology ${o.topology} (${t.chips} chips) disagree; give one of them`);
    return t;
  }
  if (o.chips) return defaultTopology(chip, o.chips);
  if (o.mesh && o.mesh !== 'auto') {
    const n = o.mesh.split(',').reduce((p, s) => p * (Number(s.split('=')[1]) || 1), 1);
    if (n > 0) return defaultTopology(chip, n);
  }
  throw new TpuError('give --topology (e.g. 8x24x32) or --chips N');
}

export interface OpClassCost {
  flops: number;
  transcendentals: number;
  bytes: number;
  time_s: number;
}

export interface LayerCost {
  compute_s: number;
  flops: number;
  bytes: number;
  weight_comm_s: number;
  activation_comm_s: number;
  time_s: number;
}

export interface CollectiveSummary {
  kind: string;
  axes: string;
  count: number;
  bytes: number;
  time_s: number;
  weights: boolean;
}

export interface MemoryBreakdown {
  parameters: number;
  gradients: number;
  optimizer_state: number;
  activations: number;
  kv_cache: number;
  total: number;
}

export interface PlanResult {
  model: string;
  chip: string;
  topology: string;
  chips: number;
  mesh: string;
  mesh_mapping: string;
  strategy: string;
  mode: Mode;
  remat?: Remat;
  batch: number;
  seq: number;
  context?: number;
  tokens_per_step: number;
  params: number;
  model_flops_per_step: number;
  hardware_flops_per_chip: number;
  compute_s: number;
  exposed_comm_s: number;
  step_time_s: number;
  tokens_per_s_per_chip: number;
  mfu: number;
  bound: 'compute' | 'memory' | 'communication';
  memory_per_chip_bytes: number;
  memory: MemoryBreakdown;
  hbm_bytes: number;
  fits: boolean;
  why?: string;
  /** Something about the plan the user should know (e.g. parameters FSDP could not split). */
  note?: string;
  days?: { tokens: number; days: number }[];
  per_layer: Record<string, LayerCost>;
  per_op_class: Record<string, OpClassCost>;
  collectives: CollectiveSummary[];
  settings: { matmul_efficiency: number; overlap: boolean; precision: string; float_bytes: number; train_cost: string };
  /** Training: the step graph that was partitioned and costed, and what it keeps between forward and backward. */
  train_graph?: { nodes: number; forward_nodes: number; recomputed: number; residuals: number; saved_bytes_per_chip: number; saved_bytes_global: number };
  /** Training: the older analytic estimate (backward = 2 × forward per op) from the partitioned forward, as a cross-check. */
  analytic?: { step_time_s: number; mfu: number; tokens_per_s_per_chip: number; memory_per_chip_bytes: number; activations_bytes: number };
  param_specs: Record<string, string>;
  input_specs: Record<string, string>;
}

const fmtSpec = (s: Spec) => `[${s.map((a) => (a.length ? a.join('*') : '-')).join(', ')}]`;

/** The layer a node belongs to: the longest tap scope (labelled block call) that prefixes its scope. */
export function layerOf(g: Graph): (n: Node) => string {
  // The outermost labelled block call (model.layers.3, not model.layers.3.self_attn).
  const taps = Object.keys(g.taps).sort((a, b) => a.length - b.length);
  const cache = new Map<string, string>();
  return (n: Node) => {
    let r = cache.get(n.scope);
    if (r === undefined) {
      r = taps.find((t) => n.scope === t || n.scope.startsWith(t + '.')) ?? (n.scope.split('.')[0] || '<root>');
      cache.set(n.scope, r);
    }
    return r;
  };
}

/** Evaluate one plan on a graph whose dims are bound (forward: [batch, seq]; decode: seq = 1). */
export function evaluatePlan(g: Graph, o: PlanOptions, dims: { batch: number; seq: number }): PlanResult {
  const chip = getChip(o.chip);
  const topo = resolveTopology(chip, o);
  if (!o.mesh || o.mesh === 'auto') throw new TpuError('evaluatePlan needs an explicit --mesh');
  const mesh = makeMesh(topo, o.mesh);
  const strategy = chooseStrategy(g, o, dims, mesh);
  return withPlanNotes(evaluateOn(g, o, dims, mesh, strategy), mesh, strategy);
}

/**
 * Why a plan does not fit, and the change that would make it fit: the largest parts of the memory per chip, then
 * for what dominates — replicated state: FSDP; FSDP state: the chip count that shards it small enough; activations
 * or KV cache: the largest global batch that fits (a multiple of the data shards), or a cheaper remat policy.
 */
export function notFitWhy(memory: MemoryBreakdown, chip: ChipSpec, mesh: Mesh, strategy: Strategy, dims: { batch: number }, mode: Mode, remat?: Remat): string {
  const gb = (x: number) => `${(x / 1e9).toFixed(1)} GB`;
  const parts = Object.entries(memory).filter(([k]) => k !== 'total').sort((a, b) => b[1] - a[1]);
  const head = `needs ${gb(memory.total)} per chip but a ${chip.name} has ${gb(chip.hbmBytes)} of HBM; largest: ${parts.slice(0, 3).map(([k, v]) => `${k.replace('_', ' ')} ${gb(v)}`).join(', ')}`;
  const state = memory.parameters + memory.gradients + memory.optimizer_state;
  const perBatch = memory.activations + memory.kv_cache;
  const room = chip.hbmBytes - state;
  const fixes: string[] = [];
  // (with one data shard — one chip, or a mesh of model axes only — FSDP has nothing to shard over: more chips)
  const dataShards = strategy.policy.dataAxes.reduce((k, a) => k * axisSize(mesh, a), 1);
  if (!strategy.policy.fsdp && state > perBatch && dataShards > 1) {
    fixes.push(`parameters${mode === 'train' ? ', gradients and optimizer state' : ''} are replicated on every chip under '${strategy.name}'; try fsdp${strategy.policy.tpAxis ? '+tp' : ''}`);
  } else if (state >= perBatch || room <= 0) {
    const shards = (strategy.policy.fsdpAxes ?? strategy.policy.dataAxes).reduce((k, a) => k * axisSize(mesh, a), 1);
    const otherRoom = chip.hbmBytes - perBatch;
    if ((strategy.policy.fsdp || dataShards === 1) && otherRoom > 0) {
      const need = Math.ceil((state * shards) / otherRoom) * (mesh.devices / shards);
      const pow2 = 2 ** Math.ceil(Math.log2(need));
      fixes.push(`the ${mode === 'train' ? 'parameters, gradients and optimizer state' : 'parameters'} shard over the data axes: more chips hold them (${need} at least, e.g. --chips ${pow2}${strategy.policy.fsdp ? '' : ' --strategy fsdp'}), or add a model axis for tensor parallelism`);
    } else if (!strategy.policy.fsdp) fixes.push(`shard the state over the data axes too: --strategy fsdp${strategy.policy.tpAxis ? '+tp' : ''}`);
    else fixes.push(strategy.policy.tpAxis ? 'more chips, or a larger model axis' : 'add a model axis (tensor parallelism) or more chips');
  } else {
    const fitBatch = Math.floor(((dims.batch * room) / perBatch) / dataShards) * dataShards;
    if (fitBatch >= dataShards) fixes.push(`${memory.kv_cache > memory.activations ? 'the KV cache grows' : 'activations grow'} with the batch: --batch ${fitBatch} or less fits${mode === 'decode' ? ' (or a shorter --context)' : ''}`);
    else fixes.push(`even --batch ${dataShards} (one sequence per data shard) does not fit: ${strategy.policy.tpAxis ? 'a larger model axis' : 'add a model axis (tensor parallelism)'} or more chips`);
    if (mode === 'train' && remat === 'save-all') fixes.push('--remat layer-inputs keeps less');
  }
  return `${head}; ${fixes.join('; ')}`;
}

/** A plan's note with what the mesh and the chosen strategy add (why this strategy; an axis crossing DCN). */
export function withPlanNotes(plan: PlanResult, mesh: Mesh, strategy: Strategy & { why?: string }): PlanResult {
  // (the FSDP note only when some parameter is split over the axis: a model whose weights do not divide gathers nothing)
  const splitOver = (axis: string) => Object.values(plan.param_specs).some((spec) => spec.split(/[[\], *]+/).includes(axis));
  const notes = [strategy.why, dcnNote(mesh, strategy, splitOver), plan.note].filter((x): x is string => !!x);
  return notes.length ? { ...plan, note: notes.join('; ') } : plan;
}

/**
 * Which axis crosses the slow links between slices (DCN) follows from the mesh's axis order (only the first axis
 * may): tensor parallelism or FSDP there all-gathers weights over DCN on every layer. Says how to reorder or rename.
 */
export function dcnNote(mesh: Mesh, strategy: Strategy, paramsSplitOver: (axis: string) => boolean = () => true): string | undefined {
  const cross = mesh.axes.find((a) => a.pieces.some((p) => p.dcn));
  if (!cross) return undefined;
  const others = mesh.axes.filter((a) => a !== cross);
  if (cross.name === strategy.policy.tpAxis) {
    return `mesh axis '${cross.name}' (tensor parallel) crosses slices over DCN; put a data axis first (e.g. --mesh ${meshText({ axes: [...others, cross] })})`;
  }
  const fsdpAxes = strategy.policy.fsdpAxes ?? strategy.policy.dataAxes;
  if (strategy.policy.fsdp && fsdpAxes.includes(cross.name) && paramsSplitOver(cross.name)) {
    const slices = cross.pieces.filter((p) => p.dcn).reduce((k, p) => k * p.size, 1);
    const replica = others.find((a) => REPLICA_AXIS_NAMES.includes(a.name));
    const hint = replica
      ? meshText({ axes: [replica, ...mesh.axes.filter((a) => a !== replica)] })
      : cross.size % slices === 0
        ? meshText({ axes: [{ name: 'replica', size: slices }, ...(cross.size > slices ? [{ name: cross.name, size: cross.size / slices }] : []), ...others] })
        : undefined;
    return `FSDP axis '${cross.name}' crosses slices over DCN (weights gathered between slices every layer)${hint ? `; replicate parameters across slices instead: --mesh ${hint}` : ''}`;
  }
  return undefined;
}

/**
 * The strategy a plan uses: `--strategy` when given; else FSDP (+tp on a model axis) for forward and training,
 * and for decode data parallelism with replicated weights (+tp) when they fit — FSDP would all-gather every
 * weight for every generated token — falling back to FSDP when replicated weights do not fit. `why` says so.
 */
export function chooseStrategy(g: Graph, o: PlanOptions, dims: { batch: number; seq: number }, mesh: Mesh): Strategy & { why?: string } {
  const given = parseStrategy(o.strategy, mesh);
  if (o.strategy !== undefined || (o.mode ?? 'forward') !== 'decode') return given;
  const tp = given.policy.tpAxis ? '+tp' : '';
  const dp = parseStrategy(`dp${tp}`, mesh);
  if (!given.policy.dataAxes.some((a) => axisSize(mesh, a) > 1)) return given;
  if (evaluateOn(g, o, dims, mesh, dp).fits) return { ...dp, why: `strategy dp${tp} (decode default: weights stay on each chip; fsdp would all-gather every weight for each token)` };
  return { ...given, why: `strategy ${given.name} (decode default dp${tp} does not fit: replicated weights exceed HBM)` };
}

export interface Partitioned {
  readonly result: PartitionResult;
  readonly recorder: CostRecorder;
  readonly events: (CollectiveEvent & { node: number })[];
  /** Recorder indices of the program's outputs (materialized). */
  readonly outIdx: readonly number[];
}

/**
 * Partition a graph into the cost recorder (and, when given, other emitters at the same time — the printers of
 * the per-device programs — so one pass yields the cost and the programs).
 */
export function partitionForCost(
  g: Graph, mesh: Mesh, policy: ParamPolicy, floatBytes = 2, backwardFrom?: number,
  also: readonly SpmdEmitter[] = [], o: { floatDtype?: 'f32' | 'bf16'; paramSpecs?: ReadonlyMap<string, Spec>; replay?: boolean } = {},
): Partitioned {
  // (a bf16 plan counts what the program keeps in f32 — index tables, the optimizer and its state — at 4 bytes)
  const recorder = new CostRecorder(floatBytes, undefined, floatBytes === 2 ? f32NodesOf(g) : undefined);
  const events: (CollectiveEvent & { node: number })[] = [];
  let node = -1;
  const origin = recorder.setOrigin.bind(recorder);
  recorder.setOrigin = (x) => {
    node = x ? x.id : -1;
    origin(x);
  };
  const sink: SpmdEmitter = also.length ? new TeeEmitter([recorder, ...also]) : recorder;
  const floatDtype = also.length ? o.floatDtype : floatBytes === 2 ? 'bf16' : undefined;
  const result = partitionGraph(
    g, mesh, policy, sink,
    { env: {}, ...(floatDtype ? { floatDtype } : {}), ...(backwardFrom !== undefined ? { backwardFrom } : {}), ...(o.replay === false ? { replay: false } : {}) },
    o.paramSpecs,
    (e) => events.push({ ...e, node }),
  );
  const rec = (v: XlaValue) => (also.length ? TeeEmitter.part(v, 0) : v);
  const outIdx = result.outputs.map((x) => instrIndex(rec(x.local)));
  return { result, recorder, events, outIdx };
}

export function evaluateOn(g: Graph, o: PlanOptions, dims: { batch: number; seq: number }, mesh: Mesh, strategy: Strategy, step?: TrainingStepInfo, pre?: Partitioned): PlanResult {
  checkBatch(dims.batch, mesh, strategy);
  checkContext(g, o);
  if ((o.mode ?? 'forward') === 'decode') checkDecodable(g);
  if ((o.mode ?? 'forward') === 'train') return evaluateTrain(g, o, dims, mesh, strategy, step, pre);
  return evaluateAnalytic(g, o, dims, mesh, strategy, pre);
}

/** A decode context longer than the model's declared sequence bound (`dim seq <= max_pos`) is refused, like --seq. */
function checkContext(g: Graph, o: PlanOptions): void {
  const max = g.dimBounds?.seq;
  if ((o.mode ?? 'forward') === 'decode' && o.context !== undefined && max !== undefined && o.context > max) {
    throw new TpuError(`--context ${o.context} is above the model's bound seq <= ${max} (positions past it were never trained; override the bound's hyperparameter to allow it)`);
  }
}

/** The batch must split evenly over the data axes (otherwise the partitioner would silently leave it unsplit). */
export function checkBatch(batch: number, mesh: Mesh, strategy: Strategy): void {
  const axes = strategy.policy.dataAxes;
  const shards = axes.reduce((p, a) => p * axisSize(mesh, a), 1);
  if (batch % shards !== 0) {
    const named = axes.map((a) => `${a}=${axisSize(mesh, a)}`).join(', ');
    const up = Math.ceil(batch / shards) * shards;
    throw new TpuError(`--batch ${batch} does not split over the data axes (${named}): each of the ${shards} data shards needs whole sequences; use a multiple of ${shards} (e.g. --batch ${up})`);
  }
}

/** Forward and decode plans; for training, the analytic estimate from the partitioned forward (the cross-check). */
export function evaluateAnalytic(g: Graph, o: PlanOptions, dims: { batch: number; seq: number }, mesh: Mesh, strategy: Strategy, pre?: Partitioned): PlanResult {
  const chip = mesh.topology.chip;
  const mode: Mode = o.mode ?? 'forward';
  const remat: Remat = o.remat ?? 'layer-inputs';
  const eff = o.matmulEfficiency ?? DEFAULT_MATMUL_EFFICIENCY;
  const overlap = o.overlap ?? true;
  const precision = o.precision ?? 'mixed';
  const layer = layerOf(g);
  const byId = nodeMap(g);

  const { result, recorder, events, outIdx } = pre ?? partitionForCost(g, mesh, strategy.policy, 2, undefined, [], { replay: o.replay });
  const instrs = recorder.instrs;
  const bytes = fusedBytes(instrs, outIdx);

  // Per node: local flops and bytes → roofline time.
  interface Acc { mxu: number; vpu: number; tr: number; bytes: number; dotOut: number; materialized: number }
  const perNode = new Map<number, Acc>();
  for (let i = 0; i < instrs.length; i++) {
    const cls = instrs.cls(i);
    const node = instrs.node[i];
    if (cls === 'arg' || node < 0) continue;
    let a = perNode.get(node);
    if (!a) perNode.set(node, (a = { mxu: 0, vpu: 0, tr: 0, bytes: 0, dotOut: 0, materialized: 0 }));
    a.mxu += instrs.mxuFlops[i];
    a.vpu += cls === 'collective' ? 0 : instrs.vpuFlops[i];
    a.tr += instrs.transcendentals[i];
    a.bytes += bytes[i];
    if (cls === 'dot') a.dotOut += instrs.outBytes[i];
    if (cls !== 'elementwise' && cls !== 'layout' && cls !== 'collective' && cls !== 'update') a.materialized += instrs.outBytes[i];
  }
  const nodeTime = (a: Acc) => {
    const c = a.mxu / (chip.peakFlops * eff) + (a.vpu + a.tr) / chip.vectorFlops;
    const m = a.bytes / chip.hbmBandwidth;
    return { t: Math.max(c, m), c, m };
  };

  // Decode: the key/value length of attention is the context, not the one new token.
  const ctx = mode === 'decode' ? o.context ?? dims.seq : 1;
  const kvProj = mode === 'decode' ? kvProjections(g) : new Set<number>();
  const actMatmuls = mode === 'decode' ? activationMatmuls(g) : new Set<number>();
  // Fused attention in decode: scores and values run over the cached keys — the context, or only the last
  // `window` positions on a sliding-window layer (the cache keeps no more).
  const attnLen = mode === 'decode' ? cachedLengths(g, ctx) : new Map<number, number>();

  /** Per-chip bytes of a node's value as partitioned (floats at 2 bytes, as the recorder counts them). */
  const localBytes = (id: number): number => {
    const v = result.values.get(id);
    return v ? bytesAt(result.partitioner.localType(v.type, result.partitioner.spec(v)), 2) : 0;
  };
  const perLayer: Record<string, LayerCost> = {};
  const perOp: Record<string, OpClassCost> = {};
  let computeFwd = 0;
  let computeOnlyMem = 0;
  let nonDotFwd = 0;
  let kvBytes = 0;
  for (const [id, a0] of perNode) {
    const n = byId.get(id)!;
    const a = { ...a0 };
    const len = actMatmuls.has(id) ? ctx : attnLen.get(id);
    if (len !== undefined) {
      // Scores and values over the cached context: flops scale with it. Bytes: a fused attention reads the
      // cached keys and values (len positions) and the new token's query, and writes its output — the op's own
      // byte rule, with no scores in HBM. (Scaling the recorded bytes of the one-position step by len also
      // scaled the query and output, overstating decode attention's traffic 2-3x.)
      a.mxu *= len;
      a.bytes = attnLen.has(id) ? localBytes(n.inputs[0]) + localBytes(id) + (localBytes(n.inputs[1]) + localBytes(n.inputs[2])) * len : a.bytes * len;
      a.vpu *= len;
      a.tr *= len;
    }
    const { t, c, m } = nodeTime(a);
    computeFwd += t;
    if (m > c) computeOnlyMem += t;
    if (!a.mxu) nonDotFwd += t;
    const L = (perLayer[layer(n)] ??= { compute_s: 0, flops: 0, bytes: 0, weight_comm_s: 0, activation_comm_s: 0, time_s: 0 });
    L.compute_s += t;
    L.flops += a.mxu + a.vpu;
    L.bytes += a.bytes;
    const P = (perOp[n.op] ??= { flops: 0, transcendentals: 0, bytes: 0, time_s: 0 });
    P.flops += a.mxu + a.vpu;
    P.transcendentals += a.tr;
    P.bytes += a.bytes;
    P.time_s += t;
    if (kvProj.has(id)) kvBytes += a0.dotOut * ctx;
  }
  // KV cache of fused attention: k and v per chip (as partitioned) × the positions the layer keeps.
  for (const [id, len] of attnLen) {
    const n = byId.get(id)!;
    for (const x of n.inputs.slice(1, 3)) {
      const v = result.values.get(x);
      if (v) kvBytes += result.partitioner.localType(v.type, result.partitioner.spec(v)).shape.reduce((p, d) => p * d, 1) * 2 * len;
    }
  }

  // Training (analytic): backward = 2 × forward per op; layer-inputs remat recomputes the forward once more,
  // matmul-outputs recomputes the non-matmul ops.
  const isTrain = mode === 'train';
  const computeMult = isTrain ? 3 + (remat === 'layer-inputs' ? 1 : 0) : 1;
  const extraRecompute = isTrain && remat === 'matmul-outputs' ? 1 : 0;
  for (const L of Object.values(perLayer)) L.compute_s *= computeMult;

  // Collectives: forward events; training repeats weight gathers in the backward pass and reduce-scatters
  // (FSDP) or all-reduces (replicated data parallel) the gradients; activation collectives run once per
  // pass (a third time when the forward is recomputed).
  const coll = new Map<string, CollectiveSummary>();
  const addColl = (kind: string, axes: readonly string[], b: number, count: number, weights: boolean, lay: string) => {
    if (!axes.length || !b) return;
    const t = collectiveTime(mesh, kind as never, axes, b).seconds * count;
    const key = `${kind}|${axes.join(',')}|${weights}`;
    const s = coll.get(key) ?? { kind, axes: axes.join(','), count: 0, bytes: 0, time_s: 0, weights };
    s.count += count;
    s.bytes += b * count;
    s.time_s += t;
    coll.set(key, s);
    const L = (perLayer[lay] ??= { compute_s: 0, flops: 0, bytes: 0, weight_comm_s: 0, activation_comm_s: 0, time_s: 0 });
    if (weights) L.weight_comm_s += t;
    else L.activation_comm_s += t;
  };
  const actPasses = isTrain ? 2 + (remat === 'layer-inputs' ? 1 : 0) : 1;
  for (const e of events) {
    const n = byId.get(e.node);
    const lay = n ? layer(n) : '<root>';
    if (e.param && e.kind === 'all-gather') {
      addColl('all-gather', e.axes, e.bytes, isTrain ? 2 : 1, true, lay);
      if (isTrain) addColl('reduce-scatter', e.axes, e.bytes, 1, true, lay);
    } else addColl(e.kind, e.axes, e.bytes, actPasses, false, lay);
  }
  // Gradients of parameters replicated over data axes are all-reduced over them.
  const paramNodes = g.nodes.filter((n) => n.op === 'param');
  let localParamElems = 0;
  /** Gradients and optimizer state: ZeRO shards them as flat buffers over the FSDP axes, whatever the layout. */
  let localStateElems = 0;
  let params = 0;
  for (const p of paramNodes) {
    const spec = result.paramSpecs.get(String(p.attrs.name))!;
    const shape = p.type.shape as number[];
    const total = shape.reduce((x, y) => x * y, 1);
    params += total;
    const shards = spec.flat().reduce((k, a) => k * axisSize(mesh, a), 1);
    localParamElems += total / shards;
    const stateAxes = new Set([...spec.flat(), ...(strategy.policy.fsdp ? strategy.policy.fsdpAxes ?? strategy.policy.dataAxes : [])]);
    localStateElems += total / [...stateAxes].reduce((k, a) => k * axisSize(mesh, a), 1);
    if (isTrain) {
      const unsharded = strategy.policy.dataAxes.filter((a) => !spec.flat().includes(a) && axisSize(mesh, a) > 1);
      addColl('all-reduce', unsharded, (total / shards) * 2, 1, true, layer(p));
    }
  }

  // Step time: per layer, weight traffic overlaps with compute (if enabled); activation collectives are exposed.
  let step = 0;
  let exposed = 0;
  let compute = 0;
  for (const L of Object.values(perLayer)) {
    const c = L.compute_s;
    const w = L.weight_comm_s;
    const t = overlap ? Math.max(c, w) : c + w;
    L.time_s = t + L.activation_comm_s;
    step += L.time_s;
    compute += c;
    exposed += L.time_s - c;
  }
  const extra = extraRecompute * nonDotFwd;
  step += extra;
  compute += extra;
  // Optimizer update: read and write the per-parameter state once (memory-bound elementwise).
  const stateBytes = precision === 'mixed' ? 16 : 12;
  if (isTrain) {
    const opt = (localStateElems * stateBytes * 2) / chip.hbmBandwidth;
    step += opt;
    compute += opt;
  }

  // Memory per chip.
  const floatB = 2;
  const parameters = localParamElems * floatB;
  const gradients = isTrain ? localStateElems * 2 : 0;
  const optimizer_state = isTrain ? localStateElems * (stateBytes - 4) : 0;
  let activations = 0;
  const layerAct = new Map<string, { all: number; dots: number; input: number }>();
  for (const [id, a] of perNode) {
    const n = byId.get(id)!;
    const k = layer(n);
    const s = layerAct.get(k) ?? { all: 0, dots: 0, input: 0 };
    s.all += a.materialized;
    s.dots += a.dotOut;
    layerAct.set(k, s);
  }
  for (const [tap, id] of Object.entries(g.taps)) {
    const s = layerAct.get(tap);
    const a = perNode.get(id);
    if (s && a) s.input = a.materialized || a.bytes / 2;
  }
  const sets = [...layerAct.values()];
  const maxAll = Math.max(0, ...sets.map((s) => s.all));
  if (isTrain) {
    if (remat === 'save-all') activations = sets.reduce((x, s) => x + s.all, 0);
    else if (remat === 'matmul-outputs') activations = sets.reduce((x, s) => x + s.dots + s.input, 0) + maxAll;
    else activations = sets.reduce((x, s) => x + s.input, 0) + maxAll;
  } else activations = maxAll * 2;
  const kv_cache = kvBytes;
  const total = parameters + gradients + optimizer_state + activations + kv_cache;
  const memory: MemoryBreakdown = { parameters, gradients, optimizer_state, activations, kv_cache, total };
  const fits = total <= chip.hbmBytes;
  const why = fits ? undefined : notFitWhy(memory, chip, mesh, strategy, dims, mode);

  // Totals.
  const whole = new CostRecorder(2, undefined, f32NodesOf(g));
  emitWholeProgram(g, whole, { env: {}, floatDtype: 'bf16' });
  let fwdModelFlops = 0;
  for (let i = 0; i < whole.instrs.length; i++) fwdModelFlops += whole.instrs.mxuFlops[i];
  const decodeScale = mode === 'decode' ? decodeModelFlops(g, whole, ctx) : 0;
  const modelFlops = isTrain ? 3 * fwdModelFlops : mode === 'decode' ? decodeScale : fwdModelFlops;
  const tokens = mode === 'decode' ? dims.batch : dims.batch * dims.seq;
  const chips = mesh.devices;
  const tps = tokens / step / chips;
  const mfu = modelFlops / (step * chips * chip.peakFlops);
  const hwFlops = [...perNode.values()].reduce((s, a) => s + a.mxu, 0) * (isTrain ? computeMult : 1);
  const memBoundShare = computeOnlyMem * computeMult;
  const bound: PlanResult['bound'] = exposed > Math.max(compute - memBoundShare, memBoundShare) ? 'communication' : memBoundShare > compute / 2 ? 'memory' : 'compute';
  const budgets = o.tokenBudgets ?? [];
  const days = isTrain && budgets.length ? budgets.map((t) => ({ tokens: t, days: t / (tps * chips) / 86400 })) : undefined;

  const paramSpecs: Record<string, string> = {};
  for (const [k, v] of [...result.paramSpecs].sort(([a], [b]) => a.localeCompare(b))) paramSpecs[k] = fmtSpec(v);
  const inputSpecs: Record<string, string> = {};
  for (const [k, v] of result.inputSpecs) inputSpecs[k] = fmtSpec(v);
  return {
    model: `${g.name}${g.variant ? ' ' + g.variant : ''}`,
    chip: chip.name,
    topology: mesh.topology.text,
    chips,
    mesh: meshText(mesh),
    mesh_mapping: meshMapping(mesh),
    strategy: strategy.name,
    mode,
    ...(isTrain ? { remat } : {}),
    batch: dims.batch,
    seq: dims.seq,
    ...(mode === 'decode' ? { context: ctx } : {}),
    tokens_per_step: tokens,
    params,
    model_flops_per_step: modelFlops,
    hardware_flops_per_chip: hwFlops,
    compute_s: compute,
    exposed_comm_s: exposed,
    step_time_s: step,
    tokens_per_s_per_chip: tps,
    mfu,
    bound,
    memory_per_chip_bytes: total,
    memory,
    hbm_bytes: chip.hbmBytes,
    fits,
    ...(why ? { why } : {}),
    ...(days ? { days } : {}),
    per_layer: perLayer,
    per_op_class: perOp,
    collectives: [...coll.values()].sort((a, b) => b.time_s - a.time_s),
    settings: {
      matmul_efficiency: eff,
      overlap,
      precision,
      float_bytes: floatB,
      train_cost: isTrain ? `analytic from the partitioned forward: backward = 2x forward per op${remat === 'layer-inputs' ? ', +1x forward recompute' : remat === 'matmul-outputs' ? ', + non-matmul recompute' : ''}` : 'partitioned program',
    },
    param_specs: paramSpecs,
    input_specs: inputSpecs,
  };
}

/** Matmuls between two activations (attention scores and values): in decode they run over the whole context. */
function activationMatmuls(g: Graph): Set<number> {
  const byId = nodeMap(g);
  const fromParam = (id: number): boolean => {
    const n = byId.get(id)!;
    if (n.op === 'param') return true;
    if (n.op === 'input' || n.op === 'constant' || n.op === 'iota') return false;
    // Layout chains of a weight still count as a weight.
    return n.inputs.length === 1 && ['reshape', 'transpose', 'broadcast', 'cast'].includes(n.op) && fromParam(n.inputs[0]);
  };
  const s = new Set<number>();
  for (const n of g.nodes) if (n.op === 'matmul' && !n.inputs.some(fromParam)) s.add(n.id);
  return s;
}

/** Projections whose outputs are cached in decode: weight matmuls feeding the right operand of an activation matmul. */
function kvProjections(g: Graph): Set<number> {
  const byId = nodeMap(g);
  const act = activationMatmuls(g);
  const out = new Set<number>();
  const walk = (id: number, seen: Set<number>) => {
    if (seen.has(id)) return;
    seen.add(id);
    const n = byId.get(id)!;
    if (n.op === 'matmul') {
      if (!act.has(id)) out.add(id);
      return;
    }
    for (const i of n.inputs) walk(i, seen);
  };
  for (const id of act) walk(byId.get(id)!.inputs[1], new Set());
  return out;
}

function decodeModelFlops(g: Graph, whole: CostRecorder, ctx: number): number {
  const act = activationMatmuls(g);
  const fused = cachedLengths(g, ctx);
  const t = whole.instrs;
  let flops = 0;
  for (let i = 0; i < t.length; i++) flops += t.mxuFlops[i] * (act.has(t.node[i]) ? ctx : fused.get(t.node[i]) ?? 1);
  return flops;
}

/** Decode: key positions each fused attention reads from its KV cache (min(window, context) on windowed layers). */
export function cachedLengths(g: Graph, ctx: number): Map<number, number> {
  const out = new Map<number, number>();
  for (const n of g.nodes) {
    if (n.op !== 'fused_attention') continue;
    const w = Number(n.attrs.window) || 0;
    out.set(n.id, w > 0 ? Math.min(w, ctx) : ctx);
  }
  return out;
}

export interface RankedPlan {
  readonly mesh: string;
  readonly strategy: string;
  readonly result?: PlanResult;
  readonly rejected?: string;
  readonly reason: string;
}

/**
 * `--mesh auto`: try every `data × model` split of the chips (model a power of two up to 64 that divides the
 * chips) with each strategy, and rank the plans that fit by step time; each with why it is compute-, memory-
 * or communication-bound, and each rejected plan with why.
 */
export function autoPlans(build: () => Graph, o: PlanOptions, dims: { batch: number; seq: number }): RankedPlan[] {
  const chip = getChip(o.chip);
  const topo = resolveTopology(chip, o);
  const n = topo.chips;
  const g = build();
  const step = (o.mode ?? 'forward') === 'train' ? buildTrainingStep(g, o.remat ?? 'layer-inputs', o.precision) : undefined;
  const out: RankedPlan[] = [];
  // Several slices (joined over DCN): also FSDP within a slice and pure data parallelism across slices.
  const slices = topo.axes.filter((a) => a.dcn).reduce((k, a) => k * a.size, 1);
  const candidates: { meshStr: string; strategies: string[] }[] = [];
  for (let m = 1; m <= Math.min(64, n); m *= 2) {
    if (n % m) continue;
    const tp = m === 1 ? '' : `,model=${m}`;
    // With one data shard, fsdp and dp (or fsdp+tp and tp) are the same plan: list it once.
    const strategies = m === 1 ? (n === 1 ? ['dp'] : ['fsdp', 'dp']) : n / m === 1 ? ['tp'] : ['fsdp+tp', 'tp'];
    candidates.push({ meshStr: `data=${n / m}${tp}`, strategies });
    if (slices > 1 && (n / m) % slices === 0 && n / m > slices) candidates.push({ meshStr: `replica=${slices},data=${n / m / slices}${tp}`, strategies: [m === 1 ? 'fsdp' : 'fsdp+tp'] });
  }
  for (const { meshStr, strategies } of candidates) {
    let mesh: Mesh;
    try {
      mesh = makeMesh(topo, meshStr);
    } catch (e) {
      out.push({ mesh: meshStr, strategy: '-', rejected: (e as Error).message, reason: 'does not map onto the torus' });
      continue;
    }
    for (const s of strategies) {
      const strategy = parseStrategy(s, mesh);
      try {
        const r = evaluateOn(g, { ...o, mesh: meshStr, strategy: s }, dims, mesh, strategy, step);
        out.push({ mesh: meshStr, strategy: s, result: r, ...(r.fits ? {} : { rejected: r.why }), reason: reasonOf(r) });
      } catch (e) {
        out.push({ mesh: meshStr, strategy: s, rejected: (e as Error).message, reason: 'cannot be partitioned' });
      }
    }
  }
  const score = (p: RankedPlan) => (p.result && p.result.fits ? p.result.step_time_s : Infinity);
  return out.sort((a, b) => score(a) - score(b) || (a.result?.memory_per_chip_bytes ?? Infinity) - (b.result?.memory_per_chip_bytes ?? Infinity));
}

export function reasonOf(r: PlanResult): string {
  const pct = (x: number) => `${((100 * x) / r.step_time_s).toFixed(0)}%`;
  if (r.bound === 'communication') {
    const top = r.collectives[0];
    return `communication-bound: ${pct(r.exposed_comm_s)} of the step waits on collectives${top ? ` (largest: ${top.kind} over ${top.axes}, ${top.weights ? 'weights' : 'activations'})` : ''}`;
  }
  if (r.bound === 'memory') return `memory-bound: most op time is HBM traffic (small per-chip batch or decode)`;
  return `compute-bound: ${pct(r.compute_s)} of the step is compute, ${pct(r.exposed_comm_s)} exposed communication`;
}

/**
 * Per-chip parameter elements as the program lays them out — gradients and Adam state follow their parameter's
 * spec (the training step's `adam.*` inputs are placed with it), so they count as many. Under FSDP, a parameter no
 * dim of which divides by the FSDP axes stays unsplit over them — listed in `unsplit` (its state is then replicated,
 * as in the emitted program; it used to be counted as if flat-sharded, which the program does not do).
 */
function stateElems(g: Graph, paramSpecs: ReadonlyMap<string, Spec>, mesh: Mesh, strategy: Strategy) {
  let localParamElems = 0;
  let params = 0;
  const fsdpAxes = strategy.policy.fsdp ? strategy.policy.fsdpAxes ?? strategy.policy.dataAxes : [];
  const unsplit: { name: string; shape: number[]; spec: Spec; elems: number }[] = [];
  for (const p of g.nodes) {
    if (p.op !== 'param') continue;
    const spec = paramSpecs.get(String(p.attrs.name)) ?? [];
    const shape = p.type.shape as number[];
    const total = shape.reduce((x, y) => x * y, 1);
    params += total;
    const local = total / spec.flat().reduce((k, a) => k * axisSize(mesh, a), 1);
    localParamElems += local;
    if (fsdpAxes.length && !fsdpAxes.some((a) => spec.flat().includes(a)) && fsdpAxes.some((a) => axisSize(mesh, a) > 1)) {
      unsplit.push({ name: String(p.attrs.name), shape, spec, elems: local });
    }
  }
  return { localParamElems, params, unsplit };
}

/** The note for parameters FSDP could not split, with a data-axis size that would split them (when there is one). */
function unsplitNote(unsplit: ReturnType<typeof stateElems>['unsplit'], mesh: Mesh, strategy: Strategy, stateBytes: number): string | undefined {
  if (!unsplit.length) return undefined;
  const axes = strategy.policy.fsdpAxes ?? strategy.policy.dataAxes;
  const size = axes.reduce((k, a) => k * axisSize(mesh, a), 1);
  const bytes = unsplit.reduce((s, u) => s + u.elems, 0) * (2 + stateBytes);
  const big = [...unsplit].sort((a, b) => b.elems - a.elems)[0];
  // The largest divisor of the FSDP size that divides some dim of every unsplit parameter (within its TP shard).
  let d = size;
  const fits = (k: number) => unsplit.every((u) => u.shape.some((n, i) => (n / (u.spec[i] ?? []).reduce((m, a) => m * axisSize(mesh, a), 1)) % k === 0));
  while (d > 1 && !fits(d)) d = d % 2 === 0 ? d / 2 : 1;
  const hint = axes.length === 1 && d > 1 && d < size ? `; a mesh with ${axes[0]}=${d} and a replica=${size / d} axis (pure data parallel) would shard them` : '';
  return `FSDP could not split ${unsplit.length} parameter${unsplit.length === 1 ? '' : 's'} over ${axes.map((a) => `${a}=${axisSize(mesh, a)}`).join(',')} (no dim divides), e.g. ${big.name} [${big.shape.join(', ')}]: their parameters, gradients and optimizer state are replicated over it (${(bytes / 1e9).toFixed(2)} GB per chip)${hint}`;
}

/**
 * A training plan costed from the real training-step graph (src/train: forward → loss → backward from each
 * op's vjp → AdamW), partitioned like the forward: FLOPs, fusion-aware bytes and collectives of every local
 * instruction (FSDP weights gathered in the forward and again in the backward, gradients reduce-scattered
 * into their shards, replicated gradients all-reduced), activation memory = the step's residuals (what the
 * remat policy keeps between forward and backward) at their per-chip size, plus one layer's working set.
 */
export function evaluateTrain(
  g: Graph, o: PlanOptions, dims: { batch: number; seq: number }, mesh: Mesh, strategy: Strategy, given?: TrainingStepInfo, pre?: Partitioned,
): PlanResult {
  const chip = mesh.topology.chip;
  const remat: Remat = o.remat ?? 'layer-inputs';
  const eff = o.matmulEfficiency ?? DEFAULT_MATMUL_EFFICIENCY;
  const overlap = o.overlap ?? true;
  const precision = o.precision ?? 'mixed';
  const step = given ?? buildTrainingStep(g, remat, precision);
  const sg = step.graph;
  const layer = layerOf(g);
  const byId = nodeMap(sg);

  const part = pre ?? partitionForCost(sg, mesh, strategy.policy, 2, step.forwardEnd, [], { replay: o.replay });
  const { result, recorder, events, outIdx } = part;
  const instrs = recorder.instrs;
  const bytes = fusedBytes(instrs, outIdx);
  // The analytic cross-check from the same partition's forward part (its instructions come first).
  // (Arguments are recorded where they are first used or, for inputs, up front: they do not end the forward.)
  let fwdEnd = 0;
  while (fwdEnd < instrs.length && !(instrs.node[fwdEnd] >= g.nextId && instrs.cls(fwdEnd) !== 'arg')) fwdEnd++;
  const fwdRecorder = new CostRecorder(recorder.floatBytes, instrs.prefix(fwdEnd), recorder.f32);
  const analytic = evaluateAnalytic(g, { ...o, mode: 'train' }, dims, mesh, strategy, {
    result: { ...result, outputs: [] },
    recorder: fwdRecorder,
    events: events.filter((e) => e.node >= 0 && e.node < g.nextId),
    outIdx: [],
  });

  const perLayer: Record<string, LayerCost> = {};
  const perOp: Record<string, OpClassCost> = {};
  const layerMat = new Map<string, number>();
  let memOnly = 0;
  let hwFlops = 0;
  // Per node (by id; `order`: nodes in the order of their first instruction, which fixes the summation order).
  const acc: ({ mxu: number; vpu: number; tr: number; bytes: number; mat: number } | undefined)[] = new Array(sg.nextId);
  const order: Node[] = [];
  for (let i = 0; i < instrs.length; i++) {
    const cls = instrs.cls(i);
    const node = instrs.node[i];
    if (cls === 'arg' || node < 0) continue;
    let a = acc[node];
    if (!a) {
      acc[node] = a = { mxu: 0, vpu: 0, tr: 0, bytes: 0, mat: 0 };
      order.push(byId.get(node)!);
    }
    a.mxu += instrs.mxuFlops[i];
    a.vpu += cls === 'collective' ? 0 : instrs.vpuFlops[i];
    a.tr += instrs.transcendentals[i];
    a.bytes += bytes[i];
    if (cls !== 'elementwise' && cls !== 'layout' && cls !== 'collective' && cls !== 'update') a.mat += instrs.outBytes[i];
  }
  for (const n of order) {
    const a = acc[n.id]!;
    const c = a.mxu / (chip.peakFlops * eff) + (a.vpu + a.tr) / chip.vectorFlops;
    const m = a.bytes / chip.hbmBandwidth;
    const t = Math.max(c, m);
    if (m > c) memOnly += t;
    hwFlops += a.mxu;
    const k = layer(n);
    const L = (perLayer[k] ??= { compute_s: 0, flops: 0, bytes: 0, weight_comm_s: 0, activation_comm_s: 0, time_s: 0 });
    L.compute_s += t;
    L.flops += a.mxu + a.vpu;
    L.bytes += a.bytes;
    const P = (perOp[n.op] ??= { flops: 0, transcendentals: 0, bytes: 0, time_s: 0 });
    P.flops += a.mxu + a.vpu;
    P.transcendentals += a.tr;
    P.bytes += a.bytes;
    P.time_s += t;
    layerMat.set(k, (layerMat.get(k) ?? 0) + a.mat);
  }

  const coll = new Map<string, CollectiveSummary>();
  for (const e of events) {
    if (!e.axes.length || !e.bytes) continue;
    const n = byId.get(e.node);
    const lay = n ? layer(n) : '<root>';
    const weights = !!e.param;
    const t = collectiveTime(mesh, e.kind, e.axes, e.bytes).seconds;
    const key = `${e.kind}|${e.axes.join(',')}|${weights}`;
    const s = coll.get(key) ?? { kind: e.kind, axes: e.axes.join(','), count: 0, bytes: 0, time_s: 0, weights };
    s.count += 1;
    s.bytes += e.bytes;
    s.time_s += t;
    coll.set(key, s);
    const L = (perLayer[lay] ??= { compute_s: 0, flops: 0, bytes: 0, weight_comm_s: 0, activation_comm_s: 0, time_s: 0 });
    if (weights) L.weight_comm_s += t;
    else L.activation_comm_s += t;
  }

  let stepTime = 0;
  let exposed = 0;
  let compute = 0;
  for (const L of Object.values(perLayer)) {
    const t = overlap ? Math.max(L.compute_s, L.weight_comm_s) : L.compute_s + L.weight_comm_s;
    L.time_s = t + L.activation_comm_s;
    stepTime += L.time_s;
    compute += L.compute_s;
    exposed += L.time_s - L.compute_s;
  }

  // Memory per chip.
  const { localParamElems, params, unsplit } = stateElems(g, result.paramSpecs, mesh, strategy);
  const stateBytes = precision === 'mixed' ? 16 : 12;
  const note = unsplitNote(unsplit, mesh, strategy, stateBytes - 2);
  const parameters = localParamElems * 2;
  const gradients = localParamElems * 2;
  const optimizer_state = localParamElems * (stateBytes - 4);
  let saved = 0;
  let savedGlobal = 0;
  const p = result.partitioner;
  for (const id of step.residuals) {
    const v = result.values.get(id);
    if (!v) continue;
    const spec = p.spec(v);
    const glob = bytesAt(v.type, 2);
    savedGlobal += glob;
    saved += glob / spec.flat().reduce((k, a) => k * axisSize(mesh, a), 1);
  }
  const working = Math.max(0, ...[...layerMat].filter(([k]) => k in g.taps).map(([, v]) => v));
  const activations = saved + working;
  const total = parameters + gradients + optimizer_state + activations;
  const memory: MemoryBreakdown = { parameters, gradients, optimizer_state, activations, kv_cache: 0, total };
  const fits = total <= chip.hbmBytes;
  const why = fits ? undefined : notFitWhy(memory, chip, mesh, strategy, dims, 'train', remat);

  const modelFlops = analytic.model_flops_per_step;
  const tokens = dims.batch * dims.seq;
  const chips = mesh.devices;
  const tps = tokens / stepTime / chips;
  const mfu = modelFlops / (stepTime * chips * chip.peakFlops);
  const bound: PlanResult['bound'] = exposed > Math.max(compute - memOnly, memOnly) ? 'communication' : memOnly > compute / 2 ? 'memory' : 'compute';
  const budgets = o.tokenBudgets ?? [];
  const days = budgets.length ? budgets.map((t) => ({ tokens: t, days: t / (tps * chips) / 86400 })) : undefined;
  const paramSpecs: Record<string, string> = {};
  for (const [k, v] of [...result.paramSpecs].sort(([a], [b]) => a.localeCompare(b))) paramSpecs[k] = fmtSpec(v);
  const inputSpecs: Record<string, string> = {};
  for (const [k, v] of result.inputSpecs) if (!isOptimizerState(k)) inputSpecs[k] = fmtSpec(v);
  return {
    ...analytic,
    remat,
    params,
    model_flops_per_step: modelFlops,
    hardware_flops_per_chip: hwFlops,
    compute_s: compute,
    exposed_comm_s: exposed,
    step_time_s: stepTime,
    tokens_per_s_per_chip: tps,
    mfu,
    bound,
    memory_per_chip_bytes: total,
    memory,
    fits,
    why,
    ...(note ? { note } : {}),
    ...(days ? { days } : {}),
    per_layer: perLayer,
    per_op_class: perOp,
    collectives: [...coll.values()].sort((a, b) => b.time_s - a.time_s),
    settings: {
      ...analytic.settings,
      train_cost: `partitioned training-step graph (${sg.nodes.length} nodes: forward, loss, backward from the ops' vjps, AdamW; remat ${remat}); analytic cross-check: step ${(analytic.step_time_s * 1e3).toFixed(1)} ms, MFU ${(100 * analytic.mfu).toFixed(1)}%, ${(analytic.memory_per_chip_bytes / 1e9).toFixed(2)} GB/chip`,
    },
    param_specs: paramSpecs,
    input_specs: inputSpecs,
    train_graph: {
      nodes: sg.nodes.length,
      forward_nodes: sg.nodes.filter((n) => n.id < step.forwardEnd).length,
      recomputed: step.recomputed,
      residuals: step.residuals.length,
      saved_bytes_per_chip: saved,
      saved_bytes_global: savedGlobal,
    },
    analytic: {
      step_time_s: analytic.step_time_s,
      mfu: analytic.mfu,
      tokens_per_s_per_chip: analytic.tokens_per_s_per_chip,
      memory_per_chip_bytes: analytic.memory_per_chip_bytes,
      activations_bytes: analytic.memory.activations,
    },
  };
}

/**
 * The training step the plans cost and `compile --mode train` emits: cross-entropy on `labels`, AdamW, the CLI's
 * remat policy. The emitted bf16 program keeps the optimizer and its state in f32 (`f32NodesOf`), and
 * `--precision mixed` (the default) adds fp32 master weights (`master.<param>`), as the cost model counts them.
 */
export function buildTrainingStep(g: Graph, remat: Remat, precision: PlanOptions['precision'] = 'mixed'): TrainingStepInfo {
  if (!g.outputs.some((x) => x.name === 'logits')) throw new TpuError(`--mode train needs a model with a 'logits' output (outputs: ${g.outputs.map((x) => x.name).join(', ')})`);
  return trainingStep(g, { remat, optimizer: { paramUpdate: precision === 'mixed' ? 'master' : 'cast' } });
}
