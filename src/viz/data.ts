/**
 * Builds the visualizer's data (format.ts) from graphs: the pipeline steps as deltas, the rewrite trace,
 * op docs from the registry and per-node cost overlays (FLOPs, transcendentals, bytes, roofline time) from
 * the op registry's own cost rules (src/ir/cost.ts).
 */
import { DimEnv, Graph, Node, NodeId, concreteShape, fmtType, getOp, hasOp, nodeCost, nodeMap } from '../ir';
import type { XlaType } from '../ir';
import { fmtSI } from './fmt';
import { AttrJson, VIZ_FORMAT, VIZ_VERSION, VizData, VizMetric, VizNode, VizRuleHit, VizStep } from './format';

/** One step of a pass pipeline: the graph after the pass, and what the pass's rules did. */
export interface PipelineStep {
  readonly name: string;
  readonly graph: Graph;
  readonly trace?: readonly { readonly rule: string; readonly created: readonly NodeId[]; readonly replaced: readonly NodeId[] }[];
}

/** A chip for the roofline time estimate: time = max(flops / peak, bytes / bandwidth). */
export interface Chip {
  readonly name: string;
  /** Peak dense bf16 FLOP/s. */
  readonly peakFlops: number;
  /** HBM bytes per second. */
  readonly hbmBandwidth: number;
}

/** TPU chips (FIGURES.md §3: scaling book `tpus.md`, Google Cloud TPU docs). */
export const CHIPS: { readonly [name: string]: Chip } = {
  v4: { name: 'TPU v4', peakFlops: 2.75e14, hbmBandwidth: 1.2e12 },
  v5e: { name: 'TPU v5e', peakFlops: 1.97e14, hbmBandwidth: 8.1e11 },
  v5p: { name: 'TPU v5p', peakFlops: 4.59e14, hbmBandwidth: 2.76e12 },
  v6e: { name: 'TPU v6e', peakFlops: 9.18e14, hbmBandwidth: 1.64e12 },
};

export interface VizOptions {
  readonly title?: string;
  readonly info?: { readonly [k: string]: string };
  /** Sizes of symbolic dims for the cost overlay; nodes whose shapes stay symbolic get no costs. */
  readonly costEnv?: DimEnv;
  readonly chip?: Chip;
  /** Sharding text of a node's output in a step, when a mesh was given. */
  readonly sharding?: (step: number, node: Node) => string | undefined;
  readonly live?: boolean;
}

export const METRICS: readonly VizMetric[] = [
  { key: 'flops', label: 'FLOPs', unit: 'count', additive: true },
  { key: 'transcendentals', label: 'transcendentals', unit: 'count', additive: true },
  { key: 'bytes', label: 'bytes accessed', unit: 'bytes', additive: true },
  { key: 'time', label: 'est. time (roofline)', unit: 'seconds', additive: true },
  { key: 'intensity', label: 'FLOPs / byte', unit: 'ratio', additive: false },
];

const SOURCE_HIDDEN = new Set(['dtype', 'shape']);

function vizNode(n: Node, scopeIndex: (s: string) => number, metrics: (n: Node) => (number | null)[] | undefined, sharding: string | undefined): VizNode {
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
export function nodeMetrics(g: Graph, n: Node, env: DimEnv, chip: Chip): (number | null)[] | undefined {
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
  const time = Math.max((c.flops + c.transcendentals) / chip.peakFlops, c.bytes / chip.hbmBandwidth);
  return [c.flops, c.transcendentals, c.bytes, time, c.bytes > 0 ? c.flops / c.bytes : null];
}

function sameNode(a: Node, b: Node): boolean {
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
  const chip = opts.chip ?? CHIPS.v5e;
  const ops: { [op: string]: { doc: string; source?: boolean } } = {};
  const out: VizStep[] = [];
  let prev: Map<NodeId, Node> | undefined;
  steps.forEach((st, k) => {
    const g = st.graph;
    const env = opts.costEnv;
    const metrics = (n: Node) => (env ? nodeMetrics(g, n, env, chip) : undefined);
    const upsert: VizNode[] = [];
    for (const n of g.nodes) {
      if (!ops[n.op]) {
        const def = hasOp(n.op) ? getOp(n.op) : undefined;
        ops[n.op] = { doc: def?.doc ?? '', ...(def?.source ? { source: true } : {}) };
      }
      const before = prev?.get(n.id);
      if (before && sameNode(before, n)) continue;
      upsert.push(vizNode(n, scopeIndex, metrics, opts.sharding?.(k, n)));
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
    scopes,
    ops,
    metrics: env ? METRICS : [],
    ...(env ? { metricNote: `costs at ${envText}XLA HloCostAnalysis conventions; time = roofline on one ${chip.name} (${fmtSI(chip.peakFlops, 'FLOP/s')}, ${fmtSI(chip.hbmBandwidth, 'B/s')})` } : {}),
    steps: out,
    ...(opts.live ? { live: true } : {}),
  };
}
