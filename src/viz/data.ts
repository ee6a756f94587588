/**
 * Builds the visualizer's data (format.ts) from graphs: the pipeline steps as deltas, the rewrite trace,
 * op docs from the registry and per-node cost overlays (FLOPs, transcendentals, bytes, roofline time) from
 * the op registry's own cost rules (src/ir/cost.ts).
 */
import { DimEnv, Graph, Node, NodeId, concreteShape, fmtType, getOp, hasOp, nodeCost, nodeMap } from '../ir';
import type { XlaType } from '../ir';
import { fmtSI } from './fmt';
import { AttrJson, VIZ_FORMAT, VIZ_VERSION, VizChipCost, VizData, VizMetric, VizNode, VizRuleHit, VizSharding, VizStep } from './format';

/** One step of a pass pipeline: the graph after the pass, and what the pass's rules did. */
export interface PipelineStep {
  readonly name: string;
  readonly graph: Graph;
  readonly trace?: readonly { readonly rule: string; readonly created: readonly NodeId[]; readonly replaced: readonly NodeId[] }[];
}

/** A chip for the roofline time estimate, time = max(flops / peak, bytes / bandwidth): the CLI passes the TPU backend's chip spec. */
export interface Chip {
  readonly name: string;
  /** Peak dense bf16 FLOP/s. */
  readonly peakFlops: number;
  /** HBM bytes per second. */
  readonly hbmBandwidth: number;
}

export interface VizOptions {
  readonly title?: string;
  readonly info?: { readonly [k: string]: string };
  /** Sizes of symbolic dims for the cost overlay; nodes whose shapes stay symbolic get no costs. */
  readonly costEnv?: DimEnv;
  /** Adds the roofline time estimate. */
  readonly chip?: Chip;
  /** The sharding overlay (src/viz/sharding.ts): each step's graph partitioned over one mesh. */
  readonly sharding?: {
    /** Per step (same order as the steps), the overlay of each node. */
    readonly steps: readonly ReadonlyMap<NodeId, { readonly layout: VizSharding; readonly cost: VizChipCost }>[];
    /** The mesh, for the header: `data=16,model=4 on 64 v5p (4x4x4), fsdp+tp`. */
    readonly mesh: string;
  };
  readonly live?: boolean;
}

const FLOPS: VizMetric = { key: 'flops', label: 'FLOPs', unit: 'count', additive: true };
const TRANS: VizMetric = { key: 'transcendentals', label: 'transcendentals', unit: 'count', additive: true };
const BYTES_M: VizMetric = { key: 'bytes', label: 'bytes accessed', unit: 'bytes', additive: true };
const INTENSITY: VizMetric = { key: 'intensity', label: 'FLOPs / byte', unit: 'ratio', additive: false };
const TIME: VizMetric = { key: 'time', label: 'est. time (roofline)', unit: 'seconds', additive: true };

/** The metrics of the overlay, in the order of VizNode.m. */
export function metricsFor(chip: Chip | undefined): VizMetric[] {
  return chip ? [FLOPS, TRANS, BYTES_M, INTENSITY, TIME] : [FLOPS, TRANS, BYTES_M, INTENSITY];
}

/** Metrics of the sharding overlay, after metricsFor's. */
export const SHARDING_METRICS: readonly VizMetric[] = [
  { key: 'chip_time', label: 'est. time per chip (sharded)', unit: 'seconds', additive: true },
  { key: 'chip_flops', label: 'FLOPs per chip', unit: 'count', additive: true },
  { key: 'chip_bytes', label: 'bytes per chip (fused)', unit: 'bytes', additive: true },
  { key: 'comm_bytes', label: 'collective bytes', unit: 'bytes', additive: true },
  { key: 'comm_time', label: 'collective time', unit: 'seconds', additive: true },
  { key: 'ways', label: 'split ways (1 = replicated)', unit: 'ratio', additive: false },
];

export function shardingMetrics(s: { readonly layout: VizSharding; readonly cost: VizChipCost } | undefined): (number | null)[] {
  if (!s) return SHARDING_METRICS.map(() => null);
  const c = s.layout.collectives ?? [];
  return [s.cost.time, s.cost.flops, s.cost.bytes, c.reduce((x, e) => x + e.bytes, 0), c.reduce((x, e) => x + e.seconds, 0), s.layout.ways];
}

const SOURCE_HIDDEN = new Set(['dtype', 'shape']);

function vizNode(n: Node, scopeIndex: (s: string) => number, metrics: (n: Node) => (number | null)[] | undefined, sharding: VizSharding | undefined): VizNode {
  const src = hasOp(n.op) && getOp(n.op).source;
  const attrs: { [k: string]: AttrJson } = {};
  for (const [k, v] of Object.entries(n.attrs)) if (!(src && SOURCE_HIDDEN.has(k))) attrs[k] = v as AttrJson;
  const name = src && typeof n.attrs.name === 'string' ? n.attrs.name : undefined;
  const m = metrics(n);
  return {
    id: n.id,
    op: n.op,
    inputs: [...n.inputs],
    scope: scopeIndex(n.scope),
    type: fmtType(n.type),
    ...(Object.keys(attrs).length ? { attrs } : {}),
    ...(name !== undefined ? { name } : {}),
    ...(n.loc ? { loc: `${n.loc.file}:${n.loc.line}:${n.loc.col}` } : {}),
    ...(m ? { m } : {}),
    ...(sharding !== undefined ? { sharding } : {}),
  };
}

/** Cost of a node at the given dim sizes, or undefined when a shape stays symbolic or the op has no cost rule. */
export function nodeMetrics(g: Graph, n: Node, env: DimEnv, chip?: Chip): (number | null)[] | undefined {
  const byId = nodeMap(g);
  const conc = (t: Node['type']): XlaType | undefined => {
    if (!t.shape.every((d) => typeof d === 'number' || env[d] !== undefined)) return undefined;
    return { dtype: t.dtype, shape: concreteShape(t.shape, env) };
  };
  const out = conc(n.type);
  const ins = n.inputs.map((i) => conc(byId.get(i)!.type));
  if (!out || ins.some((t) => !t) || !hasOp(n.op)) return undefined;
  let c;
  try {
    c = nodeCost(n, ins as XlaType[], out);
  } catch {
    return undefined;
  }
  const m = [c.flops, c.transcendentals, c.bytes, c.bytes > 0 ? c.flops / c.bytes : null];
  if (chip) m.push(Math.max((c.flops + c.transcendentals) / chip.peakFlops, c.bytes / chip.hbmBandwidth));
  return m;
}

function sameNode(a: Node, b: Node): boolean {
  return a === b || JSON.stringify(a) === JSON.stringify(b);
}

function sameJson(a: unknown, b: unknown): boolean {
  return a === b || JSON.stringify(a) === JSON.stringify(b);
}

/** The page's data for a pipeline (step 0 is the graph as compiled). */
export function buildVizData(steps: readonly PipelineStep[], opts: VizOptions = {}): VizData {
  if (!steps.length) throw new Error('buildVizData needs at least one graph');
  const scopes: string[] = [];
  const scopeIds = new Map<string, number>();
  const scopeIndex = (s: string) => {
    let i = scopeIds.get(s);
    if (i === undefined) {
      i = scopes.length;
      scopes.push(s);
      scopeIds.set(s, i);
    }
    return i;
  };
  const chip = opts.chip;
  const sh = opts.sharding;
  if (sh && sh.steps.length !== steps.length) throw new Error(`buildVizData: sharding for ${sh.steps.length} steps, but ${steps.length} steps`);
  const base = opts.costEnv ? metricsFor(chip).length : 0;
  const ops: { [op: string]: { doc: string; source?: boolean } } = {};
  const out: VizStep[] = [];
  let prev: Map<NodeId, Node> | undefined;
  steps.forEach((st, k) => {
    const g = st.graph;
    const env = opts.costEnv;
    const shards = sh?.steps[k];
    const metrics = (n: Node) => {
      const m = env ? nodeMetrics(g, n, env, chip) : undefined;
      if (!shards) return m;
      return [...(m ?? new Array(base).fill(null)), ...shardingMetrics(shards.get(n.id))];
    };
    const prevShards = k > 0 ? sh?.steps[k - 1] : undefined;
    const upsert: VizNode[] = [];
    for (const n of g.nodes) {
      if (!ops[n.op]) {
        const def = hasOp(n.op) ? getOp(n.op) : undefined;
        ops[n.op] = { doc: def?.doc ?? '', ...(def?.source ? { source: true } : {}) };
      }
      const before = prev?.get(n.id);
      if (before && sameNode(before, n) && (!shards || sameJson(prevShards?.get(n.id), shards.get(n.id)))) continue;
      upsert.push(vizNode(n, scopeIndex, metrics, shards?.get(n.id)?.layout));
    }
    const now = nodeMap(g);
    const remove = prev ? [...prev.keys()].filter((id) => !now.has(id)) : [];
    const trace: VizRuleHit[] | undefined = st.trace?.map((t) => ({ rule: t.rule, created: [...t.created], replaced: [...t.replaced] }));
    out.push({
      name: st.name,
      upsert,
      remove,
      order: g.nodes.map((n) => n.id),
      outputs: g.outputs.map((o) => ({ name: o.name, node: o.node })),
      ...(trace && trace.length ? { trace } : {}),
    });
    prev = now;
  });
  const g0 = steps[0].graph;
  const env = opts.costEnv;
  const envText = env && Object.keys(env).length ? Object.entries(env).map(([k, v]) => `${k}=${v}`).join(', ') + ', ' : '';
  return {
    format: VIZ_FORMAT,
    version: VIZ_VERSION,
    title: opts.title ?? (g0.variant ? `${g0.name} ${g0.variant}` : g0.name),
    info: opts.info ?? {},
    ...(Object.keys(g0.hparams ?? {}).length ? { hparams: { ...g0.hparams } } : {}),
    scopes,
    ops,
    metrics: [...(env ? metricsFor(chip) : []), ...(sh ? SHARDING_METRICS : [])],
    ...(env || sh
      ? {
          metricNote: [
            env ? `costs at ${envText}XLA HloCostAnalysis conventions${chip ? `; time = roofline on one ${chip.name} (${fmtSI(chip.peakFlops, 'FLOP/s')}, ${fmtSI(chip.hbmBandwidth, 'B/s')})` : ''}` : '',
            sh ? `sharded: the per-chip program on ${sh.mesh} (bf16, fusion-aware bytes, as lapidary cost)` : '',
          ].filter(Boolean).join('; '),
        }
      : {}),
    ...(sh ? { mesh: sh.mesh } : {}),
    steps: out,
    ...(opts.live ? { live: true } : {}),
  };
}
