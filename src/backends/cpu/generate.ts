/**
 * Autoregressive generation on the CPU backend. With a graph whose attention is `fused_attention` the prompt
 * is run once (prefill) and each new token is one position fed against the ops' KV caches (RoPE positions
 * come from the `positions` input); a graph with primitive attention (a [seq, seq] mask) is recomputed over
 * the whole prefix at every step. Greedy or sampled (temperature, top-k, top-p, seeded); stops at EOS or
 * after `maxNewTokens`.
 */
import { Graph } from '../../ir';
import { execute, ExecError, PackedParams, ParamStore, tf } from './index';
import { rng } from '../../random';

export interface SampleOptions {
  /** 0 or absent: greedy (argmax). */
  temperature?: number;
  /** Keep the k most likely tokens (0/absent: all). */
  topK?: number;
  /** Keep the smallest set of tokens whose probability reaches p (1/absent: all). */
  topP?: number;
  seed?: number;
}

export interface GenerateOptions extends SampleOptions {
  maxNewTokens: number;
  /** Stop after producing any of these ids (the id is kept in the output). */
  eos?: readonly number[];
  /** Use the KV cache: default when the graph supports it. */
  cache?: boolean;
  /** Called with each new id as soon as it is chosen. */
  onToken?: (id: number) => void;
  /** Re-laid-out weights to reuse (and keep) across calls; by default made for this call and freed after it. */
  packed?: PackedParams;
}

export interface GenerateResult {
  /** The prompt followed by the new ids. */
  ids: number[];
  newIds: number[];
  /** Wall time of the prompt's forward (prefill) and of the decoding steps. */
  prefillMs: number;
  decodeMs: number;
  usedCache: boolean;
}

/** True when every attention in the graph can decode incrementally (no [seq, seq] intermediates). */
export function supportsKvCache(g: Graph): boolean {
  const hasFused = g.nodes.some((n) => n.op === 'fused_attention');
  const quadratic = g.nodes.some((n) => n.type.shape.filter((d) => d === 'seq').length >= 2);
  const pos = g.nodes.find((n) => n.op === 'input' && n.attrs.name === 'positions');
  return hasFused && !quadratic && !!pos;
}


/** Pick the next id from one row of logits. */
export function pickToken(logits: Float32Array, opts: SampleOptions, random: () => number): number {
  const T = opts.temperature ?? 0;
  if (!(T > 0)) {
    let best = 0;
    for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
    return best;
  }
  let idx = Array.from(logits.keys()).sort((x, y) => logits[y] - logits[x] || x - y);
  if (opts.topK && opts.topK > 0) idx = idx.slice(0, opts.topK);
  const m = logits[idx[0]];
  let p = idx.map((i) => Math.exp((logits[i] - m) / T));
  let z = p.reduce((s, x) => s + x, 0);
  p = p.map((x) => x / z);
  const topP = opts.topP ?? 1;
  if (topP < 1) {
    let cum = 0;
    let n = 0;
    while (n < p.length && cum < topP) cum += p[n++];
    idx = idx.slice(0, Math.max(1, n));
    p = p.slice(0, Math.max(1, n));
    z = p.reduce((s, x) => s + x, 0);
    p = p.map((x) => x / z);
  }
  let r = random();
  for (let i = 0; i < p.length; i++) {
    r -= p[i];
    if (r < 0) return idx[i];
  }
  return idx[idx.length - 1];
}

function lastRow(logits: tf.Tensor): Float32Array {
  const [, T, V] = logits.shape;
  const row = tf.tidy(() => tf.reshape(tf.slice(logits, [0, T! - 1, 0], [1, 1, V!]), [V!]));
  const out = row.dataSync() as Float32Array;
  row.dispose();
  return out;
}

/** Dispose every tensor an op kept in the run state (the KV caches). */
export function disposeState(state: Map<number, unknown>): void {
  const visit = (v: unknown): void => {
    if (v instanceof tf.Tensor) v.dispose();
    else if (v && typeof v === 'object') Object.values(v).forEach(visit);
  };
  state.forEach(visit);
  state.clear();
}

/** Generate from one prompt (batch 1). */
export function generate(g: Graph, params: ParamStore, prompt: readonly number[], opts: GenerateOptions): GenerateResult {
  if (!prompt.length) throw new ExecError('the prompt is empty: give at least one token id');
  const max = g.dimBounds?.seq;
  if (max !== undefined && prompt.length + opts.maxNewTokens > max) {
    throw new ExecError(`the prompt (${prompt.length} tokens) + ${opts.maxNewTokens} new tokens = ${prompt.length + opts.maxNewTokens} positions, above the model's bound seq <= ${max}`);
  }
  const out = g.outputs.find((o) => o.name === 'logits') ?? g.outputs[0];
  if (!out) throw new ExecError(`graph ${g.name} has no output`);
  const canCache = supportsKvCache(g);
  if (opts.cache && !canCache) throw new ExecError('this graph cannot decode with a KV cache (its attention is not fused_attention); run the fusion passes or pass cache: false');
  const useCache = opts.cache ?? canCache;
  const random = rng(opts.seed ?? 0);
  const ids = [...prompt];
  const newIds: number[] = [];
  const eos = new Set(opts.eos ?? []);
  const state = new Map<number, unknown>();
  const packed = opts.packed ?? new PackedParams();
  let prefillMs = 0;
  const t0 = performance.now();
  try {
    for (let step = 0; step < opts.maxNewTokens; step++) {
      let row: Float32Array;
      if (useCache) {
        const past = step === 0 ? 0 : ids.length - 1;
        const fresh = step === 0 ? ids : ids.slice(-1);
        const feedIds = tf.tensor2d(fresh, [1, fresh.length], 'int32');
        const feedPos = tf.range(past, past + fresh.length, 1, 'int32');
        try {
          const r = execute(g, { input_ids: feedIds, positions: feedPos }, params, { state, decode: { pastLength: past }, packed });
          row = lastRow(r.outputs[out.name]);
          Object.values(r.outputs).forEach((t) => t.dispose());
        } finally {
          feedIds.dispose();
          feedPos.dispose();
        }
      } else {
        const feedIds = tf.tensor2d(ids, [1, ids.length], 'int32');
        try {
          const r = execute(g, { input_ids: feedIds }, params, { packed });
          row = lastRow(r.outputs[out.name]);
          Object.values(r.outputs).forEach((t) => t.dispose());
        } finally {
          feedIds.dispose();
        }
      }
      if (step === 0) prefillMs = performance.now() - t0;
      const id = pickToken(row, opts, random);
      ids.push(id);
      newIds.push(id);
      opts.onToken?.(id);
      if (eos.has(id)) break;
    }
  } finally {
    disposeState(state);
    if (!opts.packed) packed.dispose();
  }
  return { ids, newIds, prefillMs, decodeMs: performance.now() - t0 - prefillMs, usedCache: useCache };
}
