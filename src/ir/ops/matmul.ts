import { defineOp, OpDef, Tensor, TF } from '../op';
import { ShapeError, broadcastShapes, fmtType, isFloat } from '../shape';
import { Dim, NodeId } from '../types';
import { broadcastTo } from '../xla';
import type { GraphBuilder } from '../builder';
import { sumTo } from './_kinds';

/**
 * x[M, K] · w (w[N, K] when transposed, Hugging Face's Linear layout). tfjs-wasm's kernel (XNNPACK) is fast only
 * for an untransposed right operand: with transpose_b it is ~10× slower. So compute (w · xᵀ)ᵀ instead, which
 * transposes the activations (M·K + M·N elements) rather than the weight, and multiplies untransposed.
 */
function linear2d(tf: TF, x: Tensor, w: Tensor, tb: boolean): Tensor {
  if (!tb || tf.getBackend() !== 'wasm') return tf.matMul(x as never, w as never, false, tb);
  return tf.transpose(tf.matMul(w as never, tf.transpose(x) as never));
}

/**
 * Optional epilogue `softcap = c` (c > 0): the result is c · tanh(y / c), computed on the product before it is
 * written out — the Gemma 2 LM head's final-logit soft-cap, folded in by the softcap-folding pass.
 */
function withSoftcapEpilogue(def: OpDef): OpDef {
  const cap = (n: { attrs: { [k: string]: unknown } }) => (typeof n.attrs.softcap === 'number' && n.attrs.softcap > 0 ? n.attrs.softcap : 0);
  return {
    ...def,
    cpu: (ctx, ins, node) => {
      const y = def.cpu!(ctx, ins, node);
      const c = cap(node);
      return c ? ctx.tf.mul(ctx.tf.tanh(ctx.tf.div(y, c)), c) : y;
    },
    xla: (b, ins, node, out) => {
      const y = def.xla!(b, ins, node, out);
      const c = cap(node);
      return c ? b.binary('multiply', b.unary('tanh', b.binary('divide', y, b.constant(c, y.type))), b.constant(c, y.type)) : y;
    },
    vjp: (g, node, dy) => {
      const c = cap(node);
      if (!c) return def.vjp!(g, node, dy);
      // d(c·tanh(y/c))/dy = 1 − tanh² = 1 − (out/c)²
      const dt = node.type.dtype;
      const t = g.op('div', [node.id, g.constant(c, dt)]);
      const d = g.op('mul', [dy, g.op('sub', [g.constant(1, dt), g.op('mul', [t, t])])]);
      return def.vjp!(g, node, d);
    },
  };
}

/**
 * Batched matrix product a[..., M, K] · b[..., K, N] → [..., M, N], with optional transposes of the last two
 * dims. Batch dims broadcast; a rank-2 `b` (a weight) is shared by every batch element. `linear(x, w)` in
 * the language is matmul(x, w, transpose_b = true) with w in Hugging Face's [out, in] layout.
 */
export const matmul = defineOp(withSoftcapEpilogue({
  name: 'matmul',
  doc: 'batched matrix product with optional transposes and an optional softcap epilogue',
  arity: 2,
  infer: ([a, b], at) => {
    if (a.shape.length < 2 || b.shape.length < 2) throw new ShapeError(`matmul needs operands of rank >= 2, got ${fmtType(a)} and ${fmtType(b)}`);
    if (a.dtype !== b.dtype || !isFloat(a.dtype)) throw new ShapeError(`matmul needs float operands of one dtype, got ${fmtType(a)} and ${fmtType(b)}`);
    const ra = a.shape.length;
    const rb = b.shape.length;
    const [m, ka] = at.transpose_a ? [a.shape[ra - 1], a.shape[ra - 2]] : [a.shape[ra - 2], a.shape[ra - 1]];
    const [kb, n] = at.transpose_b ? [b.shape[rb - 1], b.shape[rb - 2]] : [b.shape[rb - 2], b.shape[rb - 1]];
    if (ka !== kb) throw new ShapeError(`matmul contracting dims differ: ${fmtType(a)}${at.transpose_a ? 'ᵀ' : ''} · ${fmtType(b)}${at.transpose_b ? 'ᵀ' : ''} (${ka} vs ${kb})`);
    const batch = rb === 2 ? a.shape.slice(0, ra - 2) : broadcastShapes(a.shape.slice(0, ra - 2), b.shape.slice(0, rb - 2));
    return { dtype: a.dtype, shape: [...batch, m, n] as Dim[] };
  },
  // A [out, in] weight used as x·wᵀ is stored transposed once ([in, out]): then x·w is XNNPACK's fast case,
  // which also keeps the packed weights of its operator across calls (decoding one token is a GEMV).
  cpuPack: {
    layout: (i, node, t) => (i === 1 && t.shape.length === 2 && node.attrs.transpose_b && !node.attrs.transpose_a ? 'T' : undefined),
    pack: (tf, _layout, w) => tf.transpose(w),
  },
  cpu: ({ tf, layouts }, [a0, b0], node) => {
    let [a, b] = [a0, b0];
    let ta = !!node.attrs.transpose_a;
    let tb = !!node.attrs.transpose_b && layouts?.[1] !== 'T';
    if (tf.getBackend() === 'wasm' && (ta || (tb && b.rank > 2))) {
      // XNNPACK (tfjs-wasm's kernel for a product with one batch element) is ~25× slower with transpose_a and
      // ~10× with transpose_b (aᵀ·b for a [128, 2048], b [128, 512]: 537 ms vs 11 ms with the transpose done
      // first). Weight gradients are such products: transpose the operand explicitly (one copy of it). A rank-2
      // `b` then takes the row-folding path below; batched products use another kernel that does not care.
      const batch1 = (x: Tensor) => x.shape.slice(0, -2).every((d) => d === 1);
      const swap = (x: Tensor) => tf.transpose(x, [...Array(x.rank - 2).keys(), x.rank - 1, x.rank - 2]);
      if (ta && (b.rank === 2 || (batch1(a) && batch1(b)))) [a, ta] = [swap(a), false];
      if (tb && b.rank > 2 && batch1(a) && batch1(b)) [b, tb] = [swap(b), false];
    }
    if (b.rank === 2 && a.rank > 2 && !ta) {
      // Fold the batch dims of `a` into rows: one large GEMM instead of many small ones.
      const k = a.shape[a.rank - 1];
      const rows = a.size / k;
      const y = linear2d(tf, tf.reshape(a, [rows, k]), b, tb);
      return tf.reshape(y, [...a.shape.slice(0, -1), y.shape[1] as number]);
    }
    if (b.rank === 2 && a.rank === 2 && !ta) return linear2d(tf, a, b, tb);
    if (b.rank === 2 && a.rank > 2) {
      const bb = tf.broadcastTo(b, [...a.shape.slice(0, -2), ...b.shape]) as Tensor;
      return tf.matMul(a as never, bb as never, ta, tb);
    }
    if (a.rank > 2 && b.rank > 2) {
      // tfjs broadcasts batch dims correctly only when they differ in the leading dim: broadcast explicitly.
      const batch = node.type.shape.slice(0, -2).map((_, i) => Math.max(a.shape[a.rank - 3 - i] ?? 1, b.shape[b.rank - 3 - i] ?? 1)).reverse();
      const full = (x: Tensor) => (x.shape.slice(0, -2).join() === batch.join() ? x : tf.broadcastTo(x, [...batch, ...x.shape.slice(-2)]));
      return tf.matMul(full(a) as never, full(b) as never, ta, tb);
    }
    return tf.matMul(a as never, b as never, ta, tb);
  },
  xla: (bld, [a, b], node, out) => {
    const ra = a.type.shape.length;
    const rb = b.type.shape.length;
    const ta = !!node.attrs.transpose_a;
    const tb = !!node.attrs.transpose_b;
    const lc = ta ? ra - 2 : ra - 1;
    if (rb === 2) {
      const rc = tb ? 1 : 0;
      const d = bld.dot(a, b, { lhsBatch: [], rhsBatch: [], lhsContract: [lc], rhsContract: [rc] });
      // dot_general orders lhs free dims before rhs free dims; with transpose_a the M dim is already last of lhs.
      return d;
    }
    const nb = out.shape.length - 2;
    const batch = out.shape.slice(0, nb);
    const aa = broadcastTo(bld, a, [...batch, ...a.type.shape.slice(ra - 2)]);
    const bb = broadcastTo(bld, b, [...batch, ...b.type.shape.slice(rb - 2)]);
    const dims = [...Array(nb).keys()];
    return bld.dot(aa, bb, { lhsBatch: dims, rhsBatch: dims, lhsContract: [ta ? nb : nb + 1], rhsContract: [tb ? nb + 1 : nb] });
  },
  vjp: (g, n, dy) => {
    const [a, b] = n.inputs;
    const ta = !!n.attrs.transpose_a;
    const tb = !!n.attrs.transpose_b;
    const mm = (x: NodeId, y: NodeId, tx: boolean, ty: boolean) => g.op('matmul', [x, y], { transpose_a: tx, transpose_b: ty });
    let da: NodeId;
    let db: NodeId;
    if (!ta && !tb) [da, db] = [mm(dy, b, false, true), mm(a, dy, true, false)];
    else if (!ta && tb) [da, db] = [mm(dy, b, false, false), mm(dy, a, true, false)];
    else if (ta && !tb) [da, db] = [mm(b, dy, false, true), mm(a, dy, false, false)];
    else [da, db] = [mm(b, dy, true, true), mm(dy, a, true, true)];
    const as = g.type(a).shape;
    if (g.type(b).shape.length === 2 && as.length > 2 && !ta && as.every((d) => typeof d === 'number')) {
      // A weight shared by every row: its gradient contracts over all rows at once, one [R, ·]ᵀ·[R, ·] product
      // with R = the batch dims folded into rows, instead of a product per batch element summed afterwards.
      const rows = (as as number[]).slice(0, -1).reduce((p, d) => p * d, 1);
      const flat = (x: NodeId) => g.op('reshape', [x], { shape: [rows, g.type(x).shape[as.length - 1]] });
      db = tb ? mm(flat(dy), flat(a), true, false) : mm(flat(a), flat(dy), true, false);
    }
    return [sumTo(g, da, g.type(a).shape), sumTo(g as GraphBuilder, db, g.type(b).shape)];
  },
}));
