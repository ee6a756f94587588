/**
 * The CPU training loop: runs the one-program training step (forward, loss, backward, AdamW) on the CPU
 * backend, feeding each step's new params and moments back in. This file and targets.ts are the only parts of
 * src/train that use a backend; the graph transforms do not.
 */
import { execute, tf, ParamStore } from '../backends/cpu';
import { Graph } from '../ir';
import { trainingStep, TrainingStepInfo } from './step';
import { distillationLoss, shiftLabels, DistillOptions } from './loss';
import { AdamWOptions, momentName } from './optimizer';
import { RematPolicy } from './autodiff';
import { TokenStream, TargetsReader, windowIds } from './data';

export interface ScheduleOptions {
  readonly lr: number;
  /** Linear warm-up steps (default 0). */
  readonly warmup?: number;
  /** After warm-up: constant, or cosine decay to `minLrRatio`·lr at `steps` (default constant). */
  readonly schedule?: 'constant' | 'cosine';
  readonly minLrRatio?: number;
}

export function learningRate(step: number, total: number, s: ScheduleOptions): number {
  const w = s.warmup ?? 0;
  if (step <= w && w > 0) return (s.lr * step) / w;
  if (s.schedule !== 'cosine') return s.lr;
  const frac = Math.min(1, (step - w) / Math.max(1, total - w));
  const min = s.lr * (s.minLrRatio ?? 0.1);
  return min + 0.5 * (s.lr - min) * (1 + Math.cos(Math.PI * frac));
}

export interface TrainerOptions {
  readonly batch: number;
  readonly seq: number;
  readonly distill?: Omit<DistillOptions, 'k'>;
  readonly targets?: TargetsReader;
  readonly optimizer?: AdamWOptions;
  readonly remat?: RematPolicy;
  readonly schedule: ScheduleOptions;
}

export interface StepLog {
  step: number;
  loss: number;
  ce_loss?: number;
  distill_loss?: number;
  distill_kl?: number;
  grad_norm: number;
  lr: number;
  ms: number;
  tokens_per_s: number;
}

/** Adam moments by param name. */
export interface OptimizerState {
  m: Map<string, tf.Tensor>;
  v: Map<string, tf.Tensor>;
}

export function zeroState(params: ParamStore): OptimizerState {
  const m = new Map<string, tf.Tensor>();
  const v = new Map<string, tf.Tensor>();
  for (const [k, t] of params) {
    m.set(k, tf.zerosLike(t));
    v.set(k, tf.zerosLike(t));
  }
  return { m, v };
}

export class Trainer {
  readonly step: TrainingStepInfo;
  constructor(
    readonly inference: Graph,
    readonly opts: TrainerOptions,
  ) {
    const k = opts.targets?.meta.k;
    const distill = opts.distill && k !== undefined ? { ...opts.distill, k } : undefined;
    this.step = trainingStep(inference, { loss: { distill }, optimizer: opts.optimizer ?? {}, remat: opts.remat });
  }

  private hasInput(name: string): boolean {
    return this.step.graph.nodes.some((n) => n.op === 'input' && n.attrs.name === name);
  }

  /** Feeds for the batch of step `s` (0-based): ids, labels and teacher targets. */
  batchFeeds(data: TokenStream, s: number): Record<string, tf.Tensor> {
    const { batch, seq } = this.opts;
    const { ids, windows } = windowIds(data, seq, s * batch, batch);
    const feeds: Record<string, tf.Tensor> = { input_ids: tf.tensor(ids, [batch, seq], 'int32') };
    if (this.hasInput('labels')) feeds.labels = tf.tensor(shiftLabels(ids, batch, seq), [batch, seq], 'int32');
    if (this.hasInput('teacher_ids')) {
      const t = this.opts.targets!.read(windows);
      const K = this.opts.targets!.meta.k;
      feeds.teacher_ids = tf.tensor(t.ids, [batch, seq, K], 'int32');
      feeds.teacher_probs = tf.tensor(t.probs, [batch, seq, K], 'float32');
    }
    return feeds;
  }

  /**
   * Run step number `s` (1-based, as AdamW counts) in place: `params` and `state` get the new tensors (the
   * old ones are disposed).
   */
  run(data: TokenStream, s: number, total: number, params: ParamStore, state: OptimizerState): StepLog {
    const t0 = performance.now();
    const lr = learningRate(s, total, this.opts.schedule);
    const feeds = this.batchFeeds(data, s - 1);
    feeds.step = tf.scalar(s);
    feeds.lr = tf.scalar(lr);
    for (const [k, t] of state.m) feeds[momentName('m', k)] = t;
    for (const [k, t] of state.v) feeds[momentName('v', k)] = t;
    const r = execute(this.step.graph, feeds, params);
    const log: StepLog = { step: s, loss: NaN, grad_norm: NaN, lr, ms: 0, tokens_per_s: 0 };
    for (const [name, t] of Object.entries(r.outputs)) {
      if (params.has(name)) {
        params.get(name)!.dispose();
        params.set(name, t);
      } else if (name.startsWith('adam.m.')) {
        state.m.get(name.slice(7))!.dispose();
        state.m.set(name.slice(7), t);
      } else if (name.startsWith('adam.v.')) {
        state.v.get(name.slice(7))!.dispose();
        state.v.set(name.slice(7), t);
      } else {
        (log as unknown as Record<string, number>)[name] = t.dataSync()[0];
        t.dispose();
      }
    }
    for (const [k, t] of Object.entries(feeds)) if (!k.startsWith('adam.')) t.dispose();
    log.ms = performance.now() - t0;
    log.tokens_per_s = (this.opts.batch * this.opts.seq * 1000) / log.ms;
    return log;
  }
}

/**
 * Mean loss terms over the given windows (forward only): `ce_loss` always, plus `distill_loss` / `distill_kl`
 * when targets are given. Windows are taken in batches of `batch`.
 */
export function evaluate(inference: Graph, params: ParamStore, data: TokenStream, o: { batch: number; seq: number; windows: readonly number[]; targets?: TargetsReader }): Record<string, number> {
  const k = o.targets?.meta.k;
  const g = distillationLoss(inference, { distill: k !== undefined ? { k, weight: 0.5 } : undefined });
  const sums: Record<string, number> = {};
  let n = 0;
  for (let i = 0; i + o.batch <= o.windows.length; i += o.batch) {
    const ws = o.windows.slice(i, i + o.batch);
    const ids = new Int32Array(o.batch * o.seq);
    ws.forEach((w, b) => ids.set(data.ids.subarray(w * o.seq, (w + 1) * o.seq), b * o.seq));
    const feeds: Record<string, tf.Tensor> = { input_ids: tf.tensor(ids, [o.batch, o.seq], 'int32'), labels: tf.tensor(shiftLabels(ids, o.batch, o.seq), [o.batch, o.seq], 'int32') };
    if (o.targets) {
      const t = o.targets.read(ws);
      feeds.teacher_ids = tf.tensor(t.ids, [o.batch, o.seq, k!], 'int32');
      feeds.teacher_probs = tf.tensor(t.probs, [o.batch, o.seq, k!], 'float32');
    }
    const r = execute(g, feeds, params);
    for (const [name, t] of Object.entries(r.outputs)) {
      if (name !== 'loss') sums[name] = (sums[name] ?? 0) + t.dataSync()[0];
      t.dispose();
    }
    Object.values(feeds).forEach((t) => t.dispose());
    n++;
  }
  return Object.fromEntries(Object.entries(sums).map(([k2, v]) => [k2, v / n]));
}


