/**
 * The CPU backend: runs an IR graph on @tensorflow/tfjs-core. Each op's tfjs lowering lives with the op's
 * definition in src/ir/ops (one registry); this module only schedules them.
 *
 * A plan is computed once per (graph, fetch set): the nodes needed for the outputs and fetched nodes, in
 * topological order, each with the op's lowering, its input slots and the slots whose last use it is. The run
 * is then a tight loop that calls each lowering inside `tf.tidy` and disposes intermediates right after their
 * last use, so `tf.memory()` stays flat over repeated runs. Params and feeds are never disposed.
 */
import * as tf from '@tensorflow/tfjs-core';
import '../../ir';
import { CpuContext, getOp, Graph, Node, NodeId, DimEnv, fmtShape, DType } from '../../ir';

export { tf };
export type Tensor = tf.Tensor;
/** Parameters by checkpoint (param) name. */
export type ParamStore = Map<string, tf.Tensor>;
export type BackendKind = 'wasm' | 'cpu';

/** Something the caller got wrong: a missing or mis-shaped feed or param (the CLI prints these as user errors). */
export class ExecError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ExecError';
  }
}

let registered = false;
let active: BackendKind | undefined;
async function registerBackends(): Promise<void> {
  if (registered) return;
  await import('@tensorflow/tfjs-backend-cpu');
  await import('@tensorflow/tfjs-backend-wasm');
  registered = true;
}

/**
 * Select the tfjs kernel backend: 'wasm' (SIMD, the default) or 'cpu' (plain JS, the fallback). Idempotent;
 * calling it with another kind switches backends (create params after switching: tensors live on a backend).
 */
export async function initCpuBackend(kind: BackendKind = 'wasm'): Promise<void> {
  if (kind !== 'wasm' && kind !== 'cpu') throw new ExecError(`unknown tfjs backend '${String(kind)}' (expected wasm or cpu)`);
  if (active === kind) return;
  await registerBackends();
  // Not tf.getBackend(): asked before any setBackend it picks a backend itself, and may settle on the plain-JS
  // kernels while the wasm module is still loading.
  const ok = await tf.setBackend(kind);
  if (!ok) throw new ExecError(`the tfjs '${kind}' backend failed to initialise`);
  await tf.ready();
  if (tf.getBackend() !== kind) throw new ExecError(`the tfjs '${kind}' backend failed to initialise (got '${tf.getBackend()}')`);
  active = kind;
  // The plain-JS backend prints a "install tfjs-node" banner on first use; choosing it here is deliberate.
  if (kind === 'cpu') (tf.backend() as unknown as { firstUse?: boolean }).firstUse = false;
}

export function currentBackend(): string {
  return tf.getBackend();
}

/** Time spent per op kind (milliseconds, number of calls), filled when `ExecOptions.profile` is given. */
export type OpProfile = Map<string, { ms: number; calls: number }>;

export interface ExecOptions {
  /** Sizes of symbolic dims; by default bound from the feeds' shapes. */
  dims?: Record<string, number>;
  /** Extra nodes whose values the caller wants (e.g. taps); returned in `fetched`. */
  fetch?: readonly number[];
  /** State kept by ops across calls (the KV cache of fused attention), keyed by node id. */
  state?: Map<number, unknown>;
  /** Incremental decoding: the number of positions already in the cache. */
  decode?: { pastLength: number };
  /** Aggregate time per op kind into this map. */
  profile?: OpProfile;
  /**
   * Params re-laid-out once for the kernels (ops' `cpuPack`, e.g. matmul weights pre-transposed), reused by
   * every run that passes the same object. Without it, operands are used as stored.
   */
  packed?: PackedParams;
}

/**
 * The params re-laid-out for the CPU kernels, by (param name, layout): made on first use, remade when the
 * store holds another tensor under that name (e.g. after an optimiser step), freed by `dispose()`. One per
 * set of loaded weights; costs one extra copy of each re-laid-out weight.
 */
export class PackedParams {
  private readonly byKey = new Map<string, { src: tf.Tensor; t: tf.Tensor }>();

  get(name: string, layout: string, src: tf.Tensor, make: () => tf.Tensor): tf.Tensor {
    const key = `${name}\u0000${layout}`;
    const hit = this.byKey.get(key);
    if (hit && hit.src === src && !src.isDisposed) return hit.t;
    hit?.t.dispose();
    const t = tf.keep(make());
    this.byKey.set(key, { src, t });
    return t;
  }

  /** Number of re-laid-out tensors held. */
  get size(): number {
    return this.byKey.size;
  }

  dispose(): void {
    for (const { t } of this.byKey.values()) t.dispose();
    this.byKey.clear();
  }
}

export interface ExecResult {
  /** By graph output name. The caller owns (and disposes) every returned tensor. */
  outputs: Record<string, tf.Tensor>;
  fetched: Map<number, tf.Tensor>;
}

type Lowering = NonNullable<ReturnType<typeof getOp>['cpu']>;

interface Step {
  readonly node: Node;
  readonly slot: number;
  readonly ins: readonly number[];
  readonly cpu: Lowering | undefined;
  /** Slots whose last use is this step (freed after it runs). */
  readonly free: readonly number[];
  /** Param operands the op wants re-laid-out (cpuPack), by input position. */
  readonly pack?: readonly { readonly input: number; readonly param: string; readonly layout: string }[];
  /** `layouts` for the CpuContext when every `pack` entry is applied. */
  readonly layouts?: readonly (string | undefined)[];
}

interface Plan {
  readonly steps: readonly Step[];
  readonly slotOf: ReadonlyMap<NodeId, number>;
  readonly keep: ReadonlySet<number>;
  readonly inputs: readonly Node[];
}

const plans = new WeakMap<Graph, Map<string, Plan>>();

function planFor(g: Graph, fetch: readonly number[]): Plan {
  let byFetch = plans.get(g);
  if (!byFetch) plans.set(g, (byFetch = new Map()));
  const key = fetch.join(',');
  const hit = byFetch.get(key);
  if (hit) return hit;

  const byId = new Map(g.nodes.map((n) => [n.id, n]));
  const roots = [...g.outputs.map((o) => o.node), ...fetch];
  for (const r of roots) if (!byId.has(r)) throw new ExecError(`graph ${g.name} has no node %${r} to fetch`);
  // Only what the roots need (dead code is never run).
  const needed = new Set<NodeId>();
  const stack = [...roots];
  while (stack.length) {
    const id = stack.pop()!;
    if (needed.has(id)) continue;
    needed.add(id);
    for (const i of byId.get(id)!.inputs) stack.push(i);
  }
  const order = g.nodes.filter((n) => needed.has(n.id));
  const slotOf = new Map<NodeId, number>(order.map((n, i) => [n.id, i]));
  const keep = new Set(roots.map((r) => slotOf.get(r)!));
  const last = new Map<number, number>();
  order.forEach((n, i) => n.inputs.forEach((x) => last.set(slotOf.get(x)!, i)));
  const freeAt: number[][] = order.map(() => []);
  for (const [slot, at] of last) if (!keep.has(slot)) freeAt[at].push(slot);
  const steps = order.map((node, i): Step => {
    const def = getOp(node.op);
    if (!def.source && !def.cpu) throw new ExecError(`op '${node.op}' (%${node.id}) has no CPU lowering`);
    const step = { node, slot: i, ins: node.inputs.map((x) => slotOf.get(x)!), cpu: def.source ? undefined : def.cpu, free: freeAt[i] };
    if (!def.cpuPack) return step;
    const pack = node.inputs.flatMap((x, input) => {
      const src = byId.get(x)!;
      const layout = src.op === 'param' ? def.cpuPack!.layout(input, node, src.type) : undefined;
      return layout === undefined ? [] : [{ input, param: String(src.attrs.name), layout }];
    });
    if (!pack.length) return step;
    const layouts = node.inputs.map((_, input) => pack.find((p) => p.input === input)?.layout);
    return { ...step, pack, layouts };
  });
  const plan: Plan = { steps, slotOf, keep, inputs: order.filter((n) => n.op === 'input') };
  byFetch.set(key, plan);
  return plan;
}

const TF_DTYPE: Record<DType, tf.DataType> = { f32: 'float32', bf16: 'float32', f16: 'float32', i32: 'int32', i64: 'int32', bool: 'bool' };

/** Bind symbolic dims from the feeds' shapes (and check every fed dim against the graph's). */
export function bindDims(g: Graph, feeds: Record<string, tf.Tensor>, given: Record<string, number> = {}): Record<string, number> {
  const env: Record<string, number> = { ...given };
  for (const n of g.nodes) {
    if (n.op !== 'input') continue;
    const name = String(n.attrs.name);
    const t = feeds[name];
    if (!t) continue;
    const want = n.type.shape;
    if (t.rank !== want.length) throw new ExecError(`input '${name}': expected rank ${want.length} ${fmtShape(want)}, got shape ${fmtShape(t.shape)}`);
    want.forEach((d, i) => {
      const got = t.shape[i];
      if (typeof d === 'number') {
        if (d !== got) throw new ExecError(`input '${name}': dim ${i} must be ${d}, got shape ${fmtShape(t.shape)}`);
      } else if (env[d] === undefined) env[d] = got;
      else if (env[d] !== got) throw new ExecError(`input '${name}': dim ${i} ('${d}') is ${got}, but '${d}' = ${env[d]} elsewhere`);
      const max = g.dimBounds?.[d];
      if (typeof d === 'string' && max !== undefined && got > max) {
        throw new ExecError(`input '${name}': dim ${i} ('${d}') is ${got}, above the model's bound ${d} <= ${max}`);
      }
    });
  }
  return env;
}

function expectShape(what: string, t: tf.Tensor, node: Node, env: DimEnv): void {
  const want = node.type.shape.map((d) => (typeof d === 'number' ? d : env[d]));
  if (t.rank !== want.length || want.some((d, i) => d !== undefined && d !== t.shape[i])) {
    throw new ExecError(`${what}: expected shape ${fmtShape(node.type.shape)}${want.some((d, i) => d !== node.type.shape[i]) ? ` = ${fmtShape(want)}` : ''}, got ${fmtShape(t.shape)}`);
  }
}

/**
 * Run a graph. `feeds` by input name (inputs with attr `default: 'arange'` are filled when not fed), `params`
 * by checkpoint name. Returns the outputs (and `opts.fetch` nodes); the caller owns the returned tensors.
 */
export function execute(g: Graph, feeds: Record<string, tf.Tensor>, params: ParamStore, opts: ExecOptions = {}): ExecResult {
  const plan = planFor(g, opts.fetch ?? []);
  const env = bindDims(g, feeds, opts.dims);
  const ctx: CpuContext = { tf, env, state: opts.state ?? new Map(), ...(opts.decode ? { decode: opts.decode } : {}) };
  const vals: (tf.Tensor | undefined)[] = new Array(plan.steps.length);
  /** Slots the executor must not dispose (params, feeds). */
  const borrowed = new Set<number>();
  const prof = opts.profile;
  try {
    for (const st of plan.steps) {
      const n = st.node;
      if (st.cpu === undefined) {
        vals[st.slot] = source(n, feeds, params, env, borrowed, st.slot);
      } else {
        const ins = st.ins.map((s) => vals[s]!);
        let c = ctx;
        if (st.pack && opts.packed) {
          const packer = getOp(n.op).cpuPack!;
          for (const p of st.pack) ins[p.input] = opts.packed.get(p.param, p.layout, ins[p.input], () => packer.pack(tf, p.layout, ins[p.input]));
          c = { ...ctx, layouts: st.layouts };
        }
        const t0 = prof ? performance.now() : 0;
        let out = tf.tidy(() => st.cpu!(c, ins, n));
        // A lowering may hand back an input unchanged (e.g. a no-op cast); give this node its own handle.
        if (ins.includes(out)) out = tf.clone(out);
        if (prof) {
          const e = prof.get(n.op) ?? { ms: 0, calls: 0 };
          e.ms += performance.now() - t0;
          e.calls++;
          prof.set(n.op, e);
        }
        vals[st.slot] = out;
      }
      for (const s of st.free) {
        if (!borrowed.has(s)) vals[s]!.dispose();
        vals[s] = undefined;
      }
    }
  } catch (e) {
    for (let s = 0; s < vals.length; s++) if (vals[s] && !borrowed.has(s)) vals[s]!.dispose();
    throw e;
  }
  const handOut = (id: NodeId, seen: Set<number>): tf.Tensor => {
    const s = plan.slotOf.get(id)!;
    const t = vals[s]!;
    // Never hand a param or feed to the caller (who disposes what it gets), nor one tensor twice.
    if (borrowed.has(s) || seen.has(s)) return tf.clone(t);
    seen.add(s);
    return t;
  };
  const seen = new Set<number>();
  const outputs: Record<string, tf.Tensor> = {};
  for (const o of g.outputs) outputs[o.name] = handOut(o.node, seen);
  const fetched = new Map<number, tf.Tensor>();
  for (const id of opts.fetch ?? []) if (!fetched.has(id)) fetched.set(id, handOut(id, seen));
  return { outputs, fetched };
}

function source(n: Node, feeds: Record<string, tf.Tensor>, params: ParamStore, env: DimEnv, borrowed: Set<number>, slot: number): tf.Tensor {
  const name = String(n.attrs.name);
  if (n.op === 'param') {
    const t = params.get(name);
    if (!t) throw new ExecError(`param '${name}' is not in the parameter store (${params.size} tensors loaded)`);
    if (t.isDisposed) throw new ExecError(`param '${name}' was disposed`);
    expectShape(`param '${name}'`, t, n, env);
    borrowed.add(slot);
    return t;
  }
  const t = feeds[name];
  if (t) {
    if (t.isDisposed) throw new ExecError(`input '${name}' was disposed`);
    const want = TF_DTYPE[n.type.dtype];
    if (t.dtype !== want) throw new ExecError(`input '${name}': expected ${want} (${n.type.dtype}), got ${t.dtype}`);
    borrowed.add(slot);
    return t;
  }
  if (n.attrs.default === 'arange') {
    const shape = n.type.shape.map((d) => (typeof d === 'number' ? d : env[d]));
    if (shape.length !== 1 || shape[0] === undefined) throw new ExecError(`input '${name}' defaults to arange but its length ${fmtShape(n.type.shape)} is not bound; feed it`);
    return tf.range(0, shape[0], 1, TF_DTYPE[n.type.dtype] === 'int32' ? 'int32' : 'float32');
  }
  throw new ExecError(`input '${name}' (${n.type.dtype}${fmtShape(n.type.shape)}) is not fed`);
}

/** Run and read back every output as plain arrays, disposing the tensors. */
export async function executeToArrays(g: Graph, feeds: Record<string, tf.Tensor>, params: ParamStore, opts: ExecOptions = {}) {
  const r = execute(g, feeds, params, opts);
  const out: Record<string, { shape: number[]; data: Float32Array | Int32Array | Uint8Array }> = {};
  for (const [k, t] of Object.entries(r.outputs)) {
    out[k] = { shape: t.shape, data: (await t.data()) as Float32Array };
    t.dispose();
  }
  for (const t of r.fetched.values()) t.dispose();
  return out;
}
