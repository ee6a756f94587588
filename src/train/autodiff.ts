/**
 * Reverse-mode automatic differentiation on the IR.
 *
 * The backward graph is built from each op's own derivative rule (`vjp` in the op registry): autodiff walks
 * the forward nodes that lie between the differentiated parameters and the loss in reverse topological
 * order, asks each op for the cotangents of its inputs, and sums cotangents that reach a node along several
 * paths. It never switches on op names.
 *
 * Rematerialisation: the whole step is one graph, so "what is kept between forward and backward" is which
 * forward values the backward nodes read. With a policy other than `save-all`, a forward node outside the
 * policy's saved set is not read by the backward: the backward reads a recomputed copy (a duplicate of the
 * forward node, built from saved values, created when the backward first needs it). An executor that frees
 * values after their last use (the CPU backend does) then keeps only the saved values alive across the
 * forward/backward boundary. `residualBytes` reports that figure for the TPU cost model.
 */
import { freeze } from 'immer';
import { Graph, GraphBuilder, GraphOutput, Node, NodeId, getOp, isFloat, BYTES, DimEnv, concreteShape, ShapeError } from '../ir';

/** What the backward may read from the forward pass. */
export type RematPolicy =
  /** Keep every forward value the backward needs (fastest, most memory). */
  | 'save-all'
  /** Keep only the outputs of labelled layers (the outermost graph taps: each layer's input is the previous one's output) and everything outside them; recompute inside layers. */
  | 'layer-inputs'
  /** Keep only matmul outputs (and graph inputs/params); recompute every elementwise/reduction op (JAX's `dots_saveable`). */
  | 'matmul-outputs'
  /** A custom predicate: true = keep this forward node. */
  | ((n: Node, g: Graph) => boolean);

export const REMAT_POLICIES = ['save-all', 'layer-inputs', 'matmul-outputs'] as const;

export interface GradOptions {
  readonly remat?: RematPolicy;
  /** Output name for the gradient of param `name`; default `grad.<name>`. */
  readonly gradName?: (param: string) => string;
  /** Keep the forward graph's outputs (default true). */
  readonly keepOutputs?: boolean;
}

export interface Backward {
  /** Gradient node for each requested param name (a zero constant where the loss does not depend on it). */
  readonly grads: Map<string, NodeId>;
  /** Ids below this are forward nodes; at or above, backward (including recomputed copies). */
  readonly forwardEnd: NodeId;
  /** Forward nodes (not params/inputs/constants) that the backward reads: what the step keeps alive. */
  readonly residuals: readonly NodeId[];
  /** Number of forward nodes duplicated for rematerialisation. */
  readonly recomputed: number;
}

/** Inputs, params and constants: values a step has without computing them. */
export const isSourceLike = (n: Node) => getOp(n.op).source === true || n.op === 'constant';

function savedPredicate(policy: RematPolicy, g: Graph): (n: Node) => boolean {
  if (typeof policy === 'function') return (n) => isSourceLike(n) || policy(n, g);
  switch (policy) {
    case 'save-all':
      return () => true;
    case 'matmul-outputs':
      return (n) => isSourceLike(n) || n.op === 'matmul';
    case 'layer-inputs': {
      // Layers = outermost labelled blocks (taps not nested in another tap's scope); their outputs are saved.
      const all = new Set(Object.keys(g.taps));
      const layers = new Set([...all].filter((t) => !hasEnclosingScope(t, all)));
      const tapNodes = new Set([...layers].map((t) => g.taps[t]));
      // Thousands of nodes share a few hundred scopes: decide each scope once.
      const inLayer = new Map<string, boolean>();
      const isInLayer = (s: string) => {
        let v = inLayer.get(s);
        if (v === undefined) inLayer.set(s, (v = layers.has(s) || hasEnclosingScope(s, layers)));
        return v;
      };
      return (n) => isSourceLike(n) || tapNodes.has(n.id) || !isInLayer(n.scope);
    }
    default:
      throw new ShapeError(`unknown remat policy '${String(policy)}' (expected ${REMAT_POLICIES.join(', ')})`);
  }
}

/** Whether a proper enclosing scope of `scope` (`a.b` and `a` for `a.b.c`) is in `scopes`. */
function hasEnclosingScope(scope: string, scopes: ReadonlySet<string>): boolean {
  for (let i = scope.indexOf('.'); i >= 0; i = scope.indexOf('.', i + 1)) if (scopes.has(scope.slice(0, i))) return true;
  return false;
}

/**
 * Append the backward pass of `loss` (a scalar node of `b`) with respect to `wrt` params to the builder.
 * `forward` is the graph `b` was started from (used for taps and scopes by remat policies).
 */
export function appendBackward(b: GraphBuilder, forward: Graph, loss: NodeId, wrt: readonly string[], remat: RematPolicy = 'save-all'): Backward {
  const forwardEnd = b.nextId;
  const nodes = b.nodes.slice(); // forward nodes, topological
  // Per-id tables over the forward ids [0, forwardEnd): arrays rather than Maps and Sets (fewer allocations).
  const byId = new Array<Node>(forwardEnd);
  for (const n of nodes) byId[n.id] = n;
  const lossNode = byId[loss];
  if (!lossNode) throw new ShapeError(`loss node %${loss} is not in the graph`);
  if (lossNode.type.shape.length !== 0 || !isFloat(lossNode.type.dtype)) {
    throw new ShapeError(`the loss must be a float scalar, got ${lossNode.type.dtype}[${lossNode.type.shape.join(', ')}]`);
  }
  const paramIds = new Map<string, NodeId>();
  for (const n of nodes) if (n.op === 'param') paramIds.set(String(n.attrs.name), n.id);
  for (const w of wrt) if (!paramIds.has(w)) throw new ShapeError(`cannot differentiate with respect to '${w}': the graph has no param of that name`);

  // Nodes on a path param → loss: forward-reachable from wrt and backward-reachable from loss, float-typed.
  const fromWrt = new Uint8Array(forwardEnd);
  for (const w of wrt) fromWrt[paramIds.get(w)!] = 1;
  for (const n of nodes) if (!fromWrt[n.id] && isFloat(n.type.dtype) && n.inputs.some((i) => fromWrt[i])) fromWrt[n.id] = 1;
  const toLoss = new Uint8Array(forwardEnd);
  toLoss[loss] = 1;
  for (let i = nodes.length - 1; i >= 0; i--) {
    const n = nodes[i];
    if (toLoss[n.id]) for (const x of n.inputs) toLoss[x] = 1;
  }
  const active = (id: NodeId) => fromWrt[id] === 1 && toLoss[id] === 1;

  // Rematerialisation: backward reads go through `view`, which returns the forward node when it is saved,
  // otherwise a recomputed copy built from (recursively viewed) inputs. Each forward id is viewed once and
  // remembered (-1 = not yet), so a copy is made when the backward first needs it.
  const saved = savedPredicate(remat, forward);
  const views = new Int32Array(forwardEnd).fill(-1);
  let recomputed = 0;
  const view = (id: NodeId): NodeId => {
    if (id >= forwardEnd) return id;
    if (views[id] < 0) views[id] = saved(byId[id]) ? id : recompute(byId[id]);
    return views[id];
  };
  const recompute = (n: Node): NodeId => {
    const ins = n.inputs.map(view);
    recomputed++;
    return b.op(n.op, ins, n.attrs, { scope: n.scope, loc: n.loc });
  };

  const ct = new Map<NodeId, NodeId>();
  const accumulate = (id: NodeId, d: NodeId) => {
    const prev = ct.get(id);
    ct.set(id, prev === undefined ? d : b.op('add', [prev, d], {}, { scope: byId[id].scope }));
  };
  ct.set(loss, b.constant(1, lossNode.type.dtype, [], { scope: lossNode.scope }));

  for (let i = nodes.length - 1; i >= 0; i--) {
    const n = nodes[i];
    const dy = ct.get(n.id);
    if (dy === undefined || !active(n.id)) continue;
    const def = getOp(n.op);
    if (def.source) continue;
    if (!n.inputs.some(active)) continue;
    if (!def.vjp) throw new ShapeError(`cannot differentiate op '${n.op}' (node %${n.id} in scope '${n.scope}'): it has no derivative rule`);
    const viewed: Node = { ...n, id: view(n.id), inputs: n.inputs.map(view) };
    const dxs = b.within(n.scope, () => def.vjp!(b, viewed, dy), n.loc);
    if (dxs.length !== n.inputs.length) throw new Error(`vjp of '${n.op}' returned ${dxs.length} cotangents for ${n.inputs.length} inputs`);
    n.inputs.forEach((x, k) => {
      const d = dxs[k];
      if (d !== null && active(x)) accumulate(x, d);
    });
    ct.delete(n.id);
  }

  const grads = new Map<string, NodeId>();
  for (const w of wrt) {
    const p = paramIds.get(w)!;
    const pn = byId[p];
    grads.set(w, ct.get(p) ?? b.constant(0, pn.type.dtype, pn.type.shape, { scope: pn.scope }));
  }

  // Residuals: forward ids read by a backward node (appended after the forward's nodes), in id order. Indexed
  // loops: this runs once per step, mostly unoptimised, where `for..of` allocates an iterator result per element.
  const read = new Uint8Array(forwardEnd);
  for (let i = nodes.length; i < b.nodes.length; i++) {
    const ins = b.nodes[i].inputs;
    for (let k = 0; k < ins.length; k++) if (ins[k] < forwardEnd) read[ins[k]] = 1;
  }
  const residuals: NodeId[] = [];
  for (let id = 0; id < forwardEnd; id++) if (read[id] && !isSourceLike(byId[id])) residuals.push(id);
  return { grads, forwardEnd, residuals, recomputed };
}

/** Bytes of the forward values the backward reads (at concrete dims): the activations a step keeps. */
export function residualBytes(g: Graph | GraphBuilder, residuals: readonly NodeId[], env: DimEnv = {}): number {
  const type = (id: NodeId) => (g instanceof GraphBuilder ? g.type(id) : g.nodes.find((n) => n.id === id)!.type);
  let total = 0;
  for (const r of residuals) {
    const t = type(r);
    total += concreteShape(t.shape, env).reduce((a, d) => a * d, 1) * BYTES[t.dtype];
  }
  return total;
}

/**
 * The gradient graph: `graph` plus outputs `grad.<param>` (d loss / d param) for every name in `wrt`
 * (default: all params). The loss output stays an output.
 */
export function grad(graph: Graph, lossOutput: string, wrt?: readonly string[], opts: GradOptions = {}): Graph {
  const out = graph.outputs.find((o) => o.name === lossOutput);
  if (!out) throw new ShapeError(`the graph has no output '${lossOutput}' (outputs: ${graph.outputs.map((o) => o.name).join(', ')})`);
  const names = wrt ?? graph.nodes.filter((n) => n.op === 'param').map((n) => String(n.attrs.name));
  const b = GraphBuilder.from(graph);
  const bw = appendBackward(b, graph, out.node, names, opts.remat ?? 'save-all');
  const gradName = opts.gradName ?? ((p: string) => `grad.${p}`);
  const outputs: GraphOutput[] = [
    ...(opts.keepOutputs === false ? graph.outputs.filter((o) => o.name === lossOutput) : graph.outputs),
    ...names.map((p) => ({ name: gradName(p), node: bw.grads.get(p)! })),
  ];
  return freeze(
    { ...b.build({ outputs, taps: { ...graph.taps }, dims: graph.dims, hparams: { ...graph.hparams }, variant: graph.variant, dimBounds: graph.dimBounds }), name: `${graph.name}.grad` },
    true,
  );
}
