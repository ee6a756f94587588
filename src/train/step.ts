/**
 * A whole training step as one graph: forward → loss (distillation-loss pass) → backward (autodiff) →
 * AdamW update. The TPU backend compiles this same graph for `--mode train`; the CPU trainer runs it.
 *
 * Inputs: the model's inputs, `labels` and/or `teacher_ids` / `teacher_probs`, `step`, `lr`, and
 * `adam.m.<param>` / `adam.v.<param>` per trained param. Params stay `param` nodes under their checkpoint names.
 * Outputs: `loss`, its terms, `grad_norm`, and the next value of every trained param (under the param's name)
 * and of its moments (under the moment inputs' names).
 */
import { Graph, GraphBuilder, GraphOutput, NodeId, ShapeError, DimEnv, getOp } from '../ir';
import { freezeDeep } from '../ir/freeze';
import { appendLoss, LossOptions } from './loss';
import { appendAdamW, AdamWOptions } from './optimizer';
import { appendBackward, isSourceLike, RematPolicy, residualBytes } from './autodiff';

export interface TrainingStepOptions {
  readonly loss?: LossOptions;
  /** AdamW settings; `false` = no update (outputs the gradients as `grad.<param>` instead). */
  readonly optimizer?: AdamWOptions | false;
  readonly remat?: RematPolicy;
  /** Params to train (default: all). The others stay constant. */
  readonly trainable?: readonly string[];
}

export interface TrainingStepInfo {
  readonly graph: Graph;
  /** Node-id boundaries: [0, forwardEnd) forward + loss, [forwardEnd, backwardEnd) backward, rest optimizer. */
  readonly forwardEnd: NodeId;
  readonly backwardEnd: NodeId;
  /** Forward values the backward reads (what is kept between forward and backward). */
  readonly residuals: readonly NodeId[];
  readonly recomputed: number;
  /** Bytes of `residuals` at the given dims (the activation memory of the step, for the cost model). */
  savedBytes(env?: DimEnv): number;
}

/**
 * Drop nodes that no output needs (keeping every input and param, so the interface does not change).
 * One sweep in reverse topological order marks what is live: every user of a node is seen before the node (the
 * IR's invariant: nodes are in topological order, ids below nextId — `verify` checks both).
 */
export function pruneDead(g: Graph): Graph {
  const live = new Uint8Array(g.nextId);
  for (const o of g.outputs) live[o.node] = 1;
  for (const t of Object.values(g.taps)) live[t] = 1;
  let liveCount = 0;
  // Indexed loops over nodes and inputs: this runs once per step, mostly before V8 optimises it, and an
  // unoptimised `for..of` allocates an iterator result per element.
  for (let i = g.nodes.length - 1; i >= 0; i--) {
    const n = g.nodes[i];
    if (!live[n.id] && !getOp(n.op).source) continue;
    live[n.id] = 1;
    liveCount++;
    for (let k = 0; k < n.inputs.length; k++) live[n.inputs[k]] = 1;
  }
  if (liveCount === g.nodes.length) return g;
  // (freezeDeep stops at what is frozen already: the nodes of a built graph)
  return freezeDeep({ ...g, nodes: g.nodes.filter((n) => live[n.id]) });
}

export function trainingStep(inference: Graph, opts: TrainingStepOptions = {}): TrainingStepInfo {
  const logitsName = opts.loss?.logits ?? 'logits';
  const out = inference.outputs.find((o) => o.name === logitsName);
  if (!out) throw new ShapeError(`the graph has no output '${logitsName}' (outputs: ${inference.outputs.map((o) => o.name).join(', ')})`);
  const b = GraphBuilder.from(inference);
  const { loss, terms } = appendLoss(b, out.node, opts.loss);
  const params = new Map<string, NodeId>();
  for (const n of b.nodes) if (n.op === 'param') params.set(String(n.attrs.name), n.id);
  const names = opts.trainable ?? [...params.keys()];
  for (const n of names) if (!params.has(n)) throw new ShapeError(`cannot train '${n}': the model has no param of that name`);
  const bw = appendBackward(b, inference, loss, names, opts.remat ?? 'save-all');
  const backwardEnd = b.nextId;
  const outputs: GraphOutput[] = [{ name: 'loss', node: loss }, ...terms];
  if (opts.optimizer === false) {
    for (const n of names) outputs.push({ name: `grad.${n}`, node: bw.grads.get(n)! });
  } else {
    const trained = new Map(names.map((n) => [n, params.get(n)!]));
    outputs.push(...appendAdamW(b, trained, bw.grads, opts.optimizer ?? {}));
  }
  const built = b.build({ outputs, taps: {}, dims: inference.dims, hparams: { ...inference.hparams }, variant: inference.variant, dimBounds: inference.dimBounds });
  // `built` is deeply frozen: the renamed copy only needs its own top level frozen.
  const graph = pruneDead(Object.freeze({ ...built, name: `${inference.name}.train_step` }));
  const residuals = residualsOf(graph, bw.forwardEnd, backwardEnd);
  return {
    graph,
    forwardEnd: bw.forwardEnd,
    backwardEnd,
    residuals,
    recomputed: bw.recomputed,
    savedBytes: (env: DimEnv = {}) => residualBytes(graph, residuals, env),
  };
}

/** Forward nodes (not inputs, params or constants) read by a live backward node. */
export function residualsOf(g: Graph, forwardEnd: NodeId, backwardEnd: NodeId): NodeId[] {
  // Indexed loops: see pruneDead.
  const read = new Uint8Array(forwardEnd);
  for (let i = 0; i < g.nodes.length; i++) {
    const n = g.nodes[i];
    if (n.id < forwardEnd || n.id >= backwardEnd) continue;
    for (let k = 0; k < n.inputs.length; k++) if (n.inputs[k] < forwardEnd) read[n.inputs[k]] = 1;
  }
  const out: NodeId[] = [];
  for (let i = 0; i < g.nodes.length; i++) {
    const n = g.nodes[i];
    if (n.id < forwardEnd && read[n.id] && !isSourceLike(n)) out.push(n.id);
  }
  return out.sort((p, q) => p - q);
}

/** The training-step graph (see `trainingStep` for boundaries and saved bytes). */
export function buildTrainingStep(inference: Graph, opts: TrainingStepOptions = {}): Graph {
  return trainingStep(inference, opts).graph;
}
