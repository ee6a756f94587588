import { CpuContext, defineOp, Tensor } from '../op';
import { ShapeError, broadcastShapes, fmtType, isFloat, shapeEq, dimEq } from '../shape';
import { CountingBuilder, bytesOf } from '../cost';
import { broadcastTo, XlaBuilder, XlaType, XlaValue } from '../xla';
import { Dim, Node, NodeId } from '../types';
import type { GraphBuilder } from '../builder';
import { vjpByExpansion } from './_vjp';

/**
 * fused_attention(q, k, v [, mask]) — scaled dot-product attention as one op, recovered by the passes from the
 * primitive chain matmul → scale → soft-cap → mask → softmax → matmul. This is the contract the CPU and TPU
 * backends, the cost model and the passes share:
 *
 *   q    [b, h, t, d]    queries
 *   k    [b, kv, s, d]   keys   (kv K/V heads; h = kv × groups)
 *   v    [b, kv, s, dv]  values
 *   mask (optional)      bool, broadcastable to [b, h, t, s]: true = may attend (an extra mask the passes
 *                        could not turn into `causal`/`window`; absent in the fully optimised graph)
 *   out  [b, h, t, dv]
 *
 * attrs
 *   scale   number   scores = (q · kᵀ) × scale
 *   softcap number   0 = none, else scores = softcap · tanh(scores / softcap)   (after the scale)
 *   causal  bool     query i (at position p = i + (s − t)) sees key j only when j ≤ p
 *   window  integer  0 = global, else query at position p sees key j only when p − j < window
 *   groups  integer  query heads per K/V head: query head n uses K/V head floor(n / groups)
 *
 * Queries sit at the last t of the s key positions (p = i + s − t), so the same op serves prefill (s = t)
 * and decoding against a cache of s keys. Masked scores are −inf before the softmax (a fully masked row
 * gives NaN, exactly like the primitive form). The order of floating-point operations is that of the
 * primitive chain (scale multiply; divide, tanh, multiply; select; softmax; matmul), so fusing is exact
 * up to summation order.
 *
 * CPU: queries are processed in blocks; a block only reads the keys its rows may see, so a windowed
 * layer computes only the band (about t × (window + block) scores) and no [t, s] score tensor is ever
 * materialised; K/V heads are shared by reshaping the queries to [b, kv, groups·t, d] — no K/V copy. The
 * causal/window rule is an additive 0/−inf bias (equal to the select for finite scores).
 * XLA: plain HLO (dot_general with batch dims [b, kv], iota/compare mask, select, softmax) — no custom
 * call. Cost: bytes are q + k + v (+ mask) + out, with no t × s term (the fused kernel keeps scores on
 * chip); FLOPs and transcendentals are those of the lowering, counted for the band only when window > 0
 * (global layers are counted dense, t × s, as XLA and Hugging Face count them).
 */

export interface AttentionAttrs {
  scale: number;
  softcap: number;
  causal: boolean;
  window: number;
  groups: number;
  [k: string]: number | boolean;
}

function attrsOf(n: Node): AttentionAttrs {
  const a = n.attrs;
  return { scale: a.scale as number, softcap: a.softcap as number, causal: !!a.causal, window: a.window as number, groups: a.groups as number };
}

/** Number of (query, key) pairs a head actually computes: the band when window > 0, else all t × s. */
export function attentionPairs(t: number, s: number, window: number, causal: boolean): number {
  if (!(window > 0)) return t * s;
  let n = 0;
  for (let i = 0; i < t; i++) {
    const p = i + s - t;
    const lo = Math.max(0, p - window + 1);
    const hi = causal ? Math.min(p, s - 1) : s - 1;
    if (hi >= lo) n += hi - lo + 1;
  }
  return n;
}

function lower(b: XlaBuilder, [q, k, v, mask]: readonly XlaValue[], n: Node): XlaValue {
  const { scale, softcap, causal, window, groups } = attrsOf(n);
  const [B, H, T, D] = q.type.shape;
  const [, KV, S] = k.type.shape;
  const DV = v.type.shape[3];
  const dt = q.type.dtype;
  const qg = b.reshape(q, [B, KV, groups * T, D]);
  let s = b.dot(qg, k, { lhsBatch: [0, 1], rhsBatch: [0, 1], lhsContract: [3], rhsContract: [3] });
  const shape = [B, H, T, S];
  s = b.reshape(s, shape);
  const st: XlaType = { dtype: dt, shape };
  if (scale !== 1) s = b.binary('multiply', s, b.constant(scale, st));
  if (softcap > 0) {
    const c = b.constant(softcap, st);
    s = b.binary('multiply', b.unary('tanh', b.binary('divide', s, c)), c);
  }
  let pred: XlaValue | undefined;
  if (causal || window > 0) {
    const it: XlaType = { dtype: 'i32', shape: [T, S] };
    const p = b.binary('add', b.iota(it, 0), b.constant(S - T, it));
    const j = b.iota(it, 1);
    let ok: XlaValue | undefined = causal ? b.compare('LE', j, p) : undefined;
    if (window > 0) {
      const w = b.compare('LT', b.binary('subtract', p, j), b.constant(window, it));
      ok = ok ? b.binary('and', ok, w) : w;
    }
    pred = b.broadcastInDim(ok!, shape, [2, 3]);
  }
  if (mask) {
    const m = broadcastTo(b, mask, shape);
    pred = pred ? b.binary('and', pred, m) : m;
  }
  if (pred) s = b.select(pred, s, b.constant(-Infinity, st));
  const keep = [0, 1, 2];
  const mx = b.broadcastInDim(b.reduce(s, [3], 'max'), shape, keep);
  const e = b.unary('exponential', b.binary('subtract', s, mx));
  const z = b.broadcastInDim(b.reduce(e, [3], 'add'), shape, keep);
  const p = b.reshape(b.binary('divide', e, z), [B, KV, groups * T, S]);
  const o = b.dot(p, v, { lhsBatch: [0, 1], rhsBatch: [0, 1], lhsContract: [3], rhsContract: [2] });
  return b.reshape(o, [B, H, T, DV]);
}

/** The KV cache one fused_attention node keeps in `ctx.state` while decoding (CPU backend). */
interface KvCache {
  k: Tensor;
  v: Tensor;
  /** Positions seen so far (the cache may hold fewer: a windowed layer keeps only the last `window`). */
  length: number;
}

/**
 * Incremental decoding (ctx.decode set): prepend the cached keys/values of earlier positions to this call's
 * k and v, and keep the result (only the last `window` positions on a sliding-window layer) for the next call.
 * Queries are the last t of the s keys, so the op's causal/window rule needs no change.
 */
function withKvCache(ctx: CpuContext, ins: readonly Tensor[], n: Node): readonly Tensor[] {
  if (!ctx.decode) return ins;
  const { tf } = ctx;
  const [q, k, v, mask] = ins;
  if (mask) throw new ShapeError(`fused_attention %${n.id}: decoding with a KV cache does not support an explicit mask`);
  const past = ctx.decode.pastLength;
  const prev = ctx.state.get(n.id) as KvCache | undefined;
  const have = prev?.length ?? 0;
  if (have !== past) throw new ShapeError(`fused_attention %${n.id}: the KV cache holds ${have} positions but decode.pastLength is ${past}`);
  const K = prev ? tf.concat([prev.k, k], 2) : k;
  const V = prev ? tf.concat([prev.v, v], 2) : v;
  const window = n.attrs.window as number;
  const S = K.shape[2] as number;
  const keep = window > 0 && S > window ? window : S;
  const kk = tf.keep(keep === S ? (K === k ? tf.clone(K) : K) : tf.slice(K, [0, 0, S - keep, 0], [-1, -1, keep, -1]));
  const vv = tf.keep(keep === S ? (V === v ? tf.clone(V) : V) : tf.slice(V, [0, 0, S - keep, 0], [-1, -1, keep, -1]));
  prev?.k.dispose();
  prev?.v.dispose();
  ctx.state.set(n.id, { k: kk, v: vv, length: past + (k.shape[2] as number) } satisfies KvCache);
  return [q, K, V];
}

/** Rows per query block on CPU. */
function blockRows(t: number, window: number): number {
  return Math.min(t, window > 0 ? Math.max(16, Math.min(window, 256)) : 256);
}

export const fused_attention = defineOp<AttentionAttrs>({
  name: 'fused_attention',
  doc: 'softmax(mask(softcap(q·kᵀ·scale))) · v with causal/window masking and grouped K/V heads, no t×s tensor',
  arity: 'variadic',
  attrs: ['scale', 'softcap', 'causal', 'window', 'groups'],
  infer: (ins, a) => {
    if (ins.length < 3 || ins.length > 4) throw new ShapeError(`fused_attention takes q, k, v and an optional mask, got ${ins.length} inputs`);
    const [q, k, v, mask] = ins;
    for (const [nm, x] of [['q', q], ['k', k], ['v', v]] as const) {
      if (x.shape.length !== 4) throw new ShapeError(`fused_attention: ${nm} must have rank 4 ([b, heads, len, dim]), got ${fmtType(x)}`);
    }
    if (!isFloat(q.dtype) || q.dtype !== k.dtype || q.dtype !== v.dtype) throw new ShapeError(`fused_attention needs float q, k, v of one dtype, got ${fmtType(q)}, ${fmtType(k)}, ${fmtType(v)}`);
    if (typeof a.scale !== 'number' || !Number.isFinite(a.scale)) throw new ShapeError(`fused_attention: 'scale' must be a finite number`);
    if (typeof a.softcap !== 'number' || !(a.softcap >= 0)) throw new ShapeError(`fused_attention: 'softcap' must be a number >= 0 (0 = none)`);
    if (typeof a.causal !== 'boolean') throw new ShapeError(`fused_attention: 'causal' must be a boolean`);
    if (!Number.isInteger(a.window) || a.window < 0) throw new ShapeError(`fused_attention: 'window' must be an integer >= 0 (0 = global)`);
    if (!Number.isInteger(a.groups) || a.groups < 1) throw new ShapeError(`fused_attention: 'groups' must be a positive integer`);
    const [b, h, t, d] = q.shape;
    const [kb, kv, s, kd] = k.shape;
    const [vb, vkv, vs, dv] = v.shape;
    if (!dimEq(b, kb) || !dimEq(b, vb)) throw new ShapeError(`fused_attention: batch dims differ: ${fmtType(q)}, ${fmtType(k)}, ${fmtType(v)}`);
    if (!dimEq(d, kd)) throw new ShapeError(`fused_attention: q and k head dims differ: ${fmtType(q)} vs ${fmtType(k)}`);
    if (!dimEq(kv, vkv) || !dimEq(s, vs)) throw new ShapeError(`fused_attention: k ${fmtType(k)} and v ${fmtType(v)} disagree on heads or length`);
    if (typeof h === 'number' && typeof kv === 'number' ? h !== kv * a.groups : !(a.groups === 1 && dimEq(h, kv))) {
      throw new ShapeError(`fused_attention: ${String(h)} query heads != ${String(kv)} K/V heads × groups ${a.groups}`);
    }
    const out: Dim[] = [b, h, t, dv];
    if (mask) {
      const full: Dim[] = [b, h, t, s];
      let ok = mask.dtype === 'bool' && mask.shape.length <= 4;
      try {
        ok = ok && shapeEq(broadcastShapes(mask.shape, full), full);
      } catch {
        ok = false;
      }
      if (!ok) throw new ShapeError(`fused_attention: mask must be bool and broadcast to [${full.join(', ')}], got ${fmtType(mask)}`);
    }
    return { dtype: q.dtype, shape: out };
  },
  cpu: (ctx, ins, n) => {
    const { tf } = ctx;
    const [q, k, v, mask] = withKvCache(ctx, ins, n);
    const { scale, softcap, causal, window, groups } = attrsOf(n);
    const [B, H, T, D] = q.shape as number[];
    const [, KV, S] = k.shape as number[];
    const DV = v.shape[3] as number;
    const off = S - T;
    const BK = B * KV;
    // tfjs-wasm multiplies with XNNPACK only for one batch and no transposes (batched or transposed operands
    // take a ~10x slower loop), so each (batch, K/V head) pair gets plain 2-d products: q [groups·bq, d] ·
    // kᵀ [d, L] (k transposed once per call) and p [groups·bq, L] · v [L, dv].
    const qg = tf.reshape(q, [BK, groups, T, D]);
    const kT = tf.unstack(tf.transpose(tf.reshape(k, [BK, S, D]), [0, 2, 1]));
    const vs = tf.unstack(tf.reshape(v, [BK, S, DV]));
    const m4 = mask ? tf.reshape(mask, [...Array(4 - mask.rank).fill(1), ...mask.shape]) : undefined;
    const BQ = blockRows(T, window);
    const blocks: Tensor[] = [];
    for (let i0 = 0; i0 < T; i0 += BQ) {
      const bq = Math.min(BQ, T - i0);
      blocks.push(
        tf.tidy(() => {
          // Keys any row of this block may see.
          let jlo = window > 0 ? Math.max(0, i0 + off - window + 1) : 0;
          let jhi = causal ? Math.min(S, i0 + bq + off) : S;
          if (jhi <= jlo) [jlo, jhi] = [Math.max(0, Math.min(jlo, S - 1)), Math.max(0, Math.min(jlo, S - 1)) + 1];
          const L = jhi - jlo;
          const qb = tf.unstack(tf.reshape(tf.slice(qg, [0, 0, i0, 0], [BK, groups, bq, D]), [BK, groups * bq, D]));
          let s = tf.stack(qb.map((x, i) => tf.matMul(x as never, (L === S ? kT[i] : tf.slice(kT[i], [0, jlo], [D, L])) as never))) as Tensor;
          if (scale !== 1) s = tf.mul(s, scale);
          if (softcap > 0) s = tf.mul(tf.tanh(tf.div(s, softcap)), softcap);
          s = tf.reshape(s, [B, KV, groups, bq, L]);
          if (causal || window > 0) {
            // The causal/window rule as an additive bias (0 or −inf): −inf exactly where the primitive form
            // selects −inf, for any finite score, and no bool [b, h, bq, L] tensor is built.
            const bias = new Float32Array(bq * L);
            let all = true;
            for (let r = 0; r < bq; r++) {
              const p = i0 + r + off;
              for (let c = 0; c < L; c++) {
                const j = jlo + c;
                if (!((!causal || j <= p) && (!(window > 0) || p - j < window))) {
                  bias[r * L + c] = -Infinity;
                  all = false;
                }
              }
            }
            if (!all) s = tf.add(s, tf.tensor(bias, [bq, L]));
          }
          if (m4) {
            const [mb, mh, mt, ms] = m4.shape as number[];
            const ms2 = tf.slice(m4, [0, 0, mt === 1 ? 0 : i0, ms === 1 ? 0 : jlo], [mb, mh, mt === 1 ? 1 : bq, ms === 1 ? 1 : L]);
            const [r2, c2] = [ms2.shape[2] as number, ms2.shape[3] as number];
            const m5 = tf.reshape(ms2, mh === 1 ? [mb, 1, 1, r2, c2] : [mb, KV, groups, r2, c2]);
            s = tf.where(tf.broadcastTo(m5, s.shape), s, tf.fill(s.shape, -Infinity));
          }
          const p = tf.unstack(tf.reshape(tf.softmax(s), [BK, groups * bq, L]));
          const o = tf.stack(p.map((x, i) => tf.matMul(x as never, (L === S ? vs[i] : tf.slice(vs[i], [jlo, 0], [L, DV])) as never)));
          return tf.reshape(o, [B, KV, groups, bq, DV]);
        }),
      );
    }
    const o = blocks.length === 1 ? blocks[0] : tf.concat(blocks, 3);
    return tf.reshape(o, [B, H, T, DV]);
  },
  xla: (b, ins, n) => lower(b, ins, n),
  // Flash-attention style: the backward recomputes the scores from q and k (primitive ops) instead of
  // keeping the [t, s] probabilities, then pulls the cotangent back through the primitives' own rules.
  vjp: (g, n, dy) => {
    const [dq, dk, dv] = vjpByExpansion(g, n.inputs.slice(0, 3), dy, (ins) => expandAttention(g, ins, n.inputs[3], n));
    return n.inputs.length === 4 ? [dq, dk, dv, null] : [dq, dk, dv];
  },
  cost: ({ node, ins, out }) => {
    const cb = new CountingBuilder();
    lower(cb, ins.map((t, i) => ({ ref: `%in${i}`, type: t })), node);
    const { window, causal } = attrsOf(node);
    const t = ins[0].shape[2];
    const s = ins[1].shape[2];
    const frac = attentionPairs(t, s, window, causal) / (t * s);
    return {
      flops: Math.round(cb.flops * frac),
      transcendentals: Math.round(cb.transcendentals * frac),
      bytes: ins.reduce((a, x) => a + bytesOf(x), 0) + bytesOf(out),
    };
  },
});

/** fused_attention as primitive IR ops (K/V heads shared by a broadcasting 5-d matmul: no K/V copy). */
export function expandAttention(g: GraphBuilder, [q, k, v]: readonly NodeId[], mask: NodeId | undefined, n: Node): NodeId {
  const { scale, softcap, causal, window, groups } = attrsOf(n);
  const [B, H, T, D] = g.type(q).shape;
  const [, KV, S] = g.type(k).shape;
  const DV = g.type(v).shape[3];
  const dt = g.type(q).dtype;
  const G = groups;
  const op = (name: string, ins: NodeId[], attrs = {}) => g.op(name, ins, attrs);
  const c = (x: number, dtype: 'f32' | 'i32' = 'f32') => g.constant(x, dtype === 'f32' ? dt : 'i32');
  const q5 = op('reshape', [q], { shape: [B, KV, G, T, D] });
  const k5 = op('reshape', [k], { shape: [B, KV, 1, S, D] });
  const v5 = op('reshape', [v], { shape: [B, KV, 1, S, DV] });
  let s = op('matmul', [q5, k5], { transpose_a: false, transpose_b: true });
  if (scale !== 1) s = op('mul', [s, c(scale)]);
  if (softcap > 0) s = op('mul', [op('tanh', [op('div', [s, c(softcap)])]), c(softcap)]);
  let ok: NodeId | undefined;
  if (causal || window > 0) {
    if (typeof T !== 'number' || typeof S !== 'number') throw new ShapeError('the derivative of a causal/windowed fused_attention needs concrete sequence lengths');
    const p = op('add', [g.op('iota', [], { shape: [T, S], axis: 0, dtype: 'i32' }), c(S - T, 'i32')]);
    const j = g.op('iota', [], { shape: [T, S], axis: 1, dtype: 'i32' });
    if (causal) ok = op('compare', [j, p], { dir: 'le' });
    if (window > 0) {
      const w = op('compare', [op('sub', [p, j]), c(window, 'i32')], { dir: 'lt' });
      ok = ok === undefined ? w : op('and', [ok, w]);
    }
  }
  if (mask !== undefined) {
    const ms = g.type(mask).shape;
    const m4 = [...Array(4 - ms.length).fill(1), ...ms] as Dim[];
    const m5 = op('reshape', [mask], { shape: m4[1] === 1 ? [m4[0], 1, 1, m4[2], m4[3]] : [m4[0], KV, G, m4[2], m4[3]] });
    ok = ok === undefined ? m5 : op('and', [ok, m5]);
  }
  if (ok !== undefined) s = op('select', [ok, s, c(-Infinity)]);
  const pr = op('softmax', [s], { axis: -1 });
  const o = op('matmul', [pr, v5], { transpose_a: false, transpose_b: false });
  return op('reshape', [o], { shape: [B, H, T, DV] });
}
