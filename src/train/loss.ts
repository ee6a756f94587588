/**
 * The `distillation-loss` pass: turns an inference graph (output `logits` [B, T, V]) into a graph whose output
 * `loss` is a scalar training objective:
 *
 *   loss = (1 - α) · CE(labels) + α · τ² · D(teacher)
 *
 * - CE: mean next-token cross-entropy over the positions whose label is >= 0, from the input
 *   `labels: i32[B, T]` (label t = the token position t must predict; -100 or any negative = ignored, exactly
 *   Hugging Face's `ignore_index`; `shiftLabels` builds them from token ids).
 * - D: distillation cross-entropy to a sampled teacher distribution, from the inputs
 *   `teacher_ids: i32[B, T, K]` and `teacher_probs: f32[B, T, K]`:
 *     D_t = -Σ_k p̃_k · log softmax(z_t / τ)[ids_k]
 *   averaged over the tokens whose teacher probabilities do not all vanish (an all-zero row = a padded /
 *   ignored position). p̃ is the stored subset renormalised to sum to 1 (`renormalize: true`, the default:
 *   the sampled support is treated as the teacher's whole distribution), or the raw probabilities
 *   (`renormalize: false`: the mass outside the subset simply contributes nothing). With K = V both give the
 *   exact cross-entropy to the teacher, which differs from KL(teacher ‖ student) by the teacher's entropy, a
 *   constant: same gradients.
 *   The teacher's probabilities are taken as given (computed at temperature τ by whoever made them); the
 *   student's logits are divided by τ and the term is scaled by τ² so gradient magnitudes do not depend on τ
 *   (Hinton et al. 2015).
 * Extra outputs: `ce_loss`, `distill_loss` (unscaled D) and `distill_kl` = Σ_k p̃_k (log p̃_k - log q_k),
 * averaged like D (the exact KL to the teacher when K = V).
 */
import { freeze } from 'immer';
import { Graph, GraphBuilder, GraphOutput, NodeId, ShapeError, fmtType, Dim } from '../ir';

export interface DistillOptions {
  /** Number of teacher entries per token (K). */
  readonly k: number;
  /** α: weight of the distillation term; 1 - α goes to the label loss. Default 1 (distillation only). */
  readonly weight?: number;
  /** τ (default 1). */
  readonly temperature?: number;
  /** Renormalise the sampled subset to sum to 1 (default true). */
  readonly renormalize?: boolean;
}

export interface LossOptions {
  /** The output holding the logits (default `logits`). */
  readonly logits?: string;
  /** Add a distillation term. Without it the loss is the label cross-entropy alone. */
  readonly distill?: DistillOptions;
  /** Keep the inference graph's outputs (default false: the training graph outputs only loss terms). */
  readonly keepOutputs?: boolean;
}

export const LOSS_SCOPE = 'loss';

/** Append the loss to a builder; returns the node ids of the loss terms. */
export function appendLoss(b: GraphBuilder, logits: NodeId, opts: LossOptions = {}): { loss: NodeId; terms: GraphOutput[] } {
  const lt = b.type(logits);
  if (lt.shape.length !== 3 || lt.dtype !== 'f32') throw new ShapeError(`the training loss is next-token cross-entropy: it needs logits f32[batch, seq, vocab], got ${fmtType(lt)}`);
  const [B, T, V] = lt.shape as [Dim, Dim, Dim];
  if (typeof V !== 'number') throw new ShapeError(`the vocabulary dimension of the logits must be a number, got '${V}'`);
  const d = opts.distill;
  const alpha = d ? (d.weight ?? 1) : 0;
  if (!(alpha >= 0 && alpha <= 1)) throw new ShapeError(`the distillation weight must be in [0, 1], got ${alpha}`);
  const tau = d?.temperature ?? 1;
  if (!(tau > 0)) throw new ShapeError(`the distillation temperature must be > 0, got ${tau}`);
  if (d && !(Number.isInteger(d.k) && d.k >= 1 && d.k <= V)) throw new ShapeError(`the number of teacher entries K must be an integer in [1, ${V}], got ${d.k}`);

  return b.within(LOSS_SCOPE, () => {
    const f = (v: number) => b.constant(v, 'f32');
    const op = (name: string, ins: NodeId[], attrs = {}) => b.op(name, ins, attrs);
    const sumAll = (x: NodeId) => op('reduce', [x], { kind: 'sum', axes: b.type(x).shape.map((_, i) => i), keepdims: false });
    const meanOver = (perToken: NodeId, weight: NodeId) => op('div', [sumAll(op('mul', [perToken, weight])), op('max', [sumAll(weight), f(1)])]);
    const terms: GraphOutput[] = [];
    const parts: NodeId[] = [];

    if (alpha < 1) {
      const labels = b.input('labels', { dtype: 'i32', shape: [B, T] }, { doc: 'next-token labels; negative = ignored' });
      const valid = op('cast', [op('compare', [labels, b.constant(0, 'i32')], { dir: 'ge' })], { dtype: 'f32' });
      const safe = op('reshape', [op('max', [labels, b.constant(0, 'i32')])], { shape: [B, T, 1] });
      const lp = op('log_softmax', [logits], { axis: -1 });
      const picked = op('reshape', [op('take_along_axis', [lp, safe])], { shape: [B, T] });
      const ce = op('neg', [meanOver(picked, valid)]);
      terms.push({ name: 'ce_loss', node: ce });
      parts.push(alpha === 0 ? ce : op('mul', [ce, f(1 - alpha)]));
    }
    if (d && alpha > 0) {
      const K = d.k;
      const ids = b.input('teacher_ids', { dtype: 'i32', shape: [B, T, K] }, { doc: 'teacher vocabulary ids per token' });
      const probs = b.input('teacher_probs', { dtype: 'f32', shape: [B, T, K] }, { doc: 'teacher probabilities of teacher_ids' });
      const mass = op('reduce', [probs], { kind: 'sum', axes: [2], keepdims: true });
      const tokenW = op('reshape', [op('cast', [op('compare', [mass, f(0)], { dir: 'gt' })], { dtype: 'f32' })], { shape: [B, T] });
      const p = d.renormalize === false ? probs : op('div', [probs, op('max', [mass, f(1e-30)])]);
      const z = tau === 1 ? logits : op('div', [logits, f(tau)]);
      const lq = op('take_along_axis', [op('log_softmax', [z], { axis: -1 }), ids]);
      const perTok = op('reduce', [op('mul', [p, lq])], { kind: 'sum', axes: [2], keepdims: false });
      const dl = op('neg', [meanOver(perTok, tokenW)]);
      // KL = Σ p̃ (log p̃ - log q), with 0 log 0 = 0.
      const pos = op('compare', [p, f(0)], { dir: 'gt' });
      const logp = op('select', [pos, op('log', [op('select', [pos, p, f(1)])]), f(0)]);
      const klTok = op('reduce', [op('mul', [p, op('sub', [logp, lq])])], { kind: 'sum', axes: [2], keepdims: false });
      terms.push({ name: 'distill_loss', node: dl }, { name: 'distill_kl', node: meanOver(klTok, tokenW) });
      parts.push(alpha * tau * tau === 1 ? dl : op('mul', [dl, f(alpha * tau * tau)]));
    }
    const loss = parts.reduce((a, c) => op('add', [a, c]));
    return { loss, terms };
  });
}

/** The pass: the inference graph plus the loss (outputs `loss`, `ce_loss` / `distill_loss`, `distill_kl`). */
export function distillationLoss(graph: Graph, opts: LossOptions = {}): Graph {
  const name = opts.logits ?? 'logits';
  const out = graph.outputs.find((o) => o.name === name);
  if (!out) throw new ShapeError(`the graph has no output '${name}' to put a loss on (outputs: ${graph.outputs.map((o) => o.name).join(', ')})`);
  const b = GraphBuilder.from(graph);
  const { loss, terms } = appendLoss(b, out.node, opts);
  const outputs = [{ name: 'loss', node: loss }, ...terms, ...(opts.keepOutputs ? graph.outputs : [])];
  return freeze({ ...b.build({ outputs, taps: { ...graph.taps }, dims: graph.dims, hparams: { ...graph.hparams }, variant: graph.variant, dimBounds: graph.dimBounds }), name: `${graph.name}.train` }, true);
}

/** Hugging Face's label shift: labels[b, t] = ids[b, t + 1], and -100 (ignored) at the last position. */
export function shiftLabels(ids: Int32Array, batch: number, seq: number): Int32Array {
  const out = new Int32Array(batch * seq);
  for (let b = 0; b < batch; b++) for (let t = 0; t < seq; t++) out[b * seq + t] = t + 1 < seq ? ids[b * seq + t + 1] : -100;
  return out;
}
