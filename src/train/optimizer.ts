/**
 * AdamW (Loshchilov & Hutter; PyTorch's `torch.optim.AdamW` semantics) as graph ops, so a whole training step
 * is one program. Per parameter p with gradient g at step t (1-based):
 *
 *   g ← g · min(1, clip / (‖all g‖₂ + 1e-6))          (optional global-norm clipping, torch's clip_grad_norm_)
 *   p ← p − lr · wd · p                                  (decoupled weight decay, before the Adam step)
 *   m ← β1 m + (1 − β1) g;   v ← β2 v + (1 − β2) g²
 *   p ← p − lr · (m / (1 − β1^t)) / (sqrt(v / (1 − β2^t)) + ε)
 *
 * Inputs added: `step: f32[]` (t), `lr: f32[]` (so schedules live outside the program), and for every
 * trained param `adam.m.<name>`, `adam.v.<name>` (its shape, f32). Outputs: the new value of each param under
 * the param's own name, `adam.m.<name>` / `adam.v.<name>` for the new moments, and `grad_norm`. An output
 * named like a param or an input is that tensor's next value: a training loop feeds them back.
 *
 * `paramUpdate` says how the update meets the params' own dtype, for a program whose weights are bf16 while the
 * optimizer computes in f32 (the TPU backend keeps the optimizer's nodes in f32 when it emits everything else in
 * bf16: `f32NodesOf` in src/backends/tpu/precision.ts):
 * - 'master': each trained param has an fp32 master copy, the input `master.<name>`; the update reads and writes
 *   the master (output `master.<name>`), and the param's next value is the new master cast to the param's dtype
 *   (mixed-precision training: bf16 weights for the forward and backward, fp32 master weights and moments);
 * - 'cast': the update starts from the param itself and its result is cast back to the param's dtype;
 * - unset: the param's next value is the update itself (an all-f32 graph, as the CPU trainer runs).
 * In an all-f32 graph the casts are the identity and a master equals its param.
 */
import { GraphBuilder, GraphOutput, NodeId, ShapeError } from '../ir';

export interface AdamWOptions {
  readonly beta1?: number;
  readonly beta2?: number;
  readonly eps?: number;
  /** Decoupled weight decay coefficient (default 0). */
  readonly weightDecay?: number;
  /** Which params decay; default: every param of rank >= 2 (matrices and embeddings, not norm scales). */
  readonly decay?: (name: string, shape: readonly (number | string)[]) => boolean;
  /** Clip the global gradient norm to this value (default: no clipping). */
  readonly clipNorm?: number;
  /** How the update meets the params' own dtype: fp32 master copies, or a cast back (see above). */
  readonly paramUpdate?: 'master' | 'cast';
}

export const OPTIMIZER_SCOPE = 'optimizer';
export const momentName = (kind: 'm' | 'v', param: string) => `adam.${kind}.${param}`;
export const masterName = (param: string) => `master.${param}`;
/** Whether an input or output name is the optimizer's state: a moment (`adam.m.` / `adam.v.`) or a master copy. */
export const isOptimizerState = (name: string) => name.startsWith('adam.') || name.startsWith('master.');

export function appendAdamW(b: GraphBuilder, params: ReadonlyMap<string, NodeId>, grads: ReadonlyMap<string, NodeId>, opts: AdamWOptions = {}): GraphOutput[] {
  const beta1 = opts.beta1 ?? 0.9;
  const beta2 = opts.beta2 ?? 0.999;
  const eps = opts.eps ?? 1e-8;
  const wd = opts.weightDecay ?? 0;
  for (const [k, v] of Object.entries({ beta1, beta2 })) if (!(v >= 0 && v < 1)) throw new ShapeError(`AdamW ${k} must be in [0, 1), got ${v}`);
  if (!(eps > 0)) throw new ShapeError(`AdamW eps must be > 0, got ${eps}`);
  if (!(wd >= 0)) throw new ShapeError(`AdamW weight decay must be >= 0, got ${wd}`);
  if (opts.clipNorm !== undefined && !(opts.clipNorm > 0)) throw new ShapeError(`the gradient clipping norm must be > 0, got ${opts.clipNorm}`);
  const decays = opts.decay ?? ((_n: string, s: readonly (number | string)[]) => s.length >= 2);

  return b.within(OPTIMIZER_SCOPE, () => {
    const f = (v: number) => b.constant(v, 'f32');
    // A parameter's share of the step (its gradient's square sum, its update) is scoped under the parameter's own
    // scope (`optimizer.model.layers.3.mlp`): reports, the visualizer and the TPU printer's layer functions see
    // which layer it belongs to.
    const paramScope = (name: string) => {
      const p = params.get(name);
      const s = p === undefined ? '' : b.node(p).scope;
      return s ? `${OPTIMIZER_SCOPE}.${s}` : OPTIMIZER_SCOPE;
    };
    const op = (name: string, ins: NodeId[], attrs = {}) => b.op(name, ins, attrs);
    const step = b.input('step', { dtype: 'f32', shape: [] }, { doc: 'the 1-based number of this optimizer step' });
    const lr = b.input('lr', { dtype: 'f32', shape: [] }, { doc: 'learning rate for this step' });
    const outputs: GraphOutput[] = [];

    // Global gradient norm (always reported; used for clipping when asked). With `paramUpdate`, each gradient is
    // first cast once to the update's dtype (the identity in an all-f32 graph; in a bf16 program, the one convert
    // of the gradient, after it is summed), and the norm and the update read the cast.
    const cast = new Map<string, NodeId>();
    let sq: NodeId | undefined;
    for (const [name, g0] of grads) {
      b.within(paramScope(name), () => {
        const g = opts.paramUpdate ? op('cast', [g0], { dtype: b.type(g0).dtype }) : g0;
        cast.set(name, g);
        const s = op('reduce', [op('mul', [g, g])], { kind: 'sum', axes: b.type(g).shape.map((_, i) => i), keepdims: false });
        sq = sq === undefined ? s : op('add', [sq, s]);
      });
    }
    const norm = op('sqrt', [sq ?? f(0)]);
    outputs.push({ name: 'grad_norm', node: norm });
    const scale = opts.clipNorm !== undefined ? op('min', [f(1), op('div', [f(opts.clipNorm), op('add', [norm, f(1e-6)])])]) : undefined;

    // Bias corrections: 1 - β^t.
    const bc1 = op('sub', [f(1), op('pow', [f(beta1), step])]);
    const bc2 = op('sub', [f(1), op('pow', [f(beta2), step])]);
    const stepSize = op('div', [lr, bc1]);
    // Scalars every parameter's update shares, made once (the same ops on the same values as per parameter).
    const [b1, c1, b2, c2, epsC] = [f(beta1), f(1 - beta1), f(beta2), f(1 - beta2), f(eps)];
    const sqrtBc2 = op('sqrt', [bc2]);
    const decayFactor = wd > 0 ? op('sub', [f(1), op('mul', [lr, f(wd)])]) : undefined;

    for (const [name, p] of params) {
      const g0 = cast.get(name);
      if (g0 === undefined) throw new ShapeError(`no gradient for param '${name}'`);
      b.within(paramScope(name), () => update(name, p, g0));
    }
    return outputs;

    function update(name: string, p: NodeId, g0: NodeId): void {
      const pt = b.type(p);
      const g = scale === undefined ? g0 : op('mul', [g0, scale]);
      const m0 = b.input(momentName('m', name), pt);
      const v0 = b.input(momentName('v', name), pt);
      const master = opts.paramUpdate === 'master';
      const w = master ? b.input(masterName(name), pt, { doc: `the master copy of ${name}` }) : p;
      const m = op('add', [op('mul', [m0, b1]), op('mul', [g, c1])]);
      const v = op('add', [op('mul', [v0, b2]), op('mul', [op('mul', [g, g]), c2])]);
      const decayed = decayFactor !== undefined && decays(name, pt.shape) ? op('mul', [w, decayFactor]) : w;
      const denom = op('add', [op('div', [op('sqrt', [v]), sqrtBc2]), epsC]);
      const next = op('sub', [decayed, op('mul', [stepSize, op('div', [m, denom])])]);
      outputs.push({ name, node: opts.paramUpdate ? op('cast', [next], { dtype: pt.dtype }) : next });
      if (master) outputs.push({ name: masterName(name), node: next });
      outputs.push({ name: momentName('m', name), node: m }, { name: momentName('v', name), node: v });
    }
  });
}
