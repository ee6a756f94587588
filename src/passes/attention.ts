/**
 * Attention fusion: the primitive chain the front end emits,
 *
 *   matmul(softmax(select(mask, softcap(matmul(q, transpose(k)) * scale), -inf)), v)
 *
 * (scale, soft-cap and mask each optional; kᵀ as a transpose or as matmul's transpose_b) becomes one
 * `fused_attention(q, k, v [, mask])` with the scale and the cap as attributes. The mask stays an input
 * here; the sliding-window pass turns a recognised causal/band mask into attributes, and the GQA pass
 * removes the K/V head repetition.
 */
import { ShapeError } from '../ir/shape';
import { inferType } from '../ir/op';
import { definePass, Pass } from './types';
import { applyRules, rule, Rule } from './rewrite';
import { Match, pat } from './pattern';

const falsy = (v: unknown) => !v;
const lastAxis = (v: unknown, n: { type: { shape: readonly unknown[] } }) => v === -1 || v === n.type.shape.length - 1;
const swapLast = (p: unknown) => JSON.stringify(p) === '[0,1,3,2]';

const scores = pat.oneOf(
  pat.op('matmul', [pat.v('q'), pat.op('transpose', [pat.v('k')], { attrs: { perm: swapLast } })], { attrs: { transpose_a: falsy, transpose_b: falsy }, as: 'qk' }),
  pat.op('matmul', [pat.v('q'), pat.v('k')], { attrs: { transpose_a: falsy, transpose_b: true }, as: 'qk' }),
);
const scaled = pat.oneOf(pat.op('mul', [scores, pat.const('scale')], { as: 'sc' }), pat.op('div', [scores, pat.const('inv_scale')], { as: 'sc' }), scores);
const capped = pat.oneOf(pat.op('softcap', [scaled], { as: 'cap' }), scaled);
const masked = pat.oneOf(pat.op('select', [pat.v('mask'), capped, pat.const(-Infinity)], { as: 'sel' }), capped);
export const attentionPattern = pat.op('matmul', [pat.op('softmax', [masked], { attrs: { axis: lastAxis }, as: 'probs' }), pat.v('v')], {
  attrs: { transpose_a: falsy, transpose_b: falsy },
});

/** Every intermediate [b, h, t, s] tensor must be used only inside the chain, or fusing would not remove it. */
function interiorSingleUse(m: Match): boolean {
  return m.matched.slice(1).every((id) => m.graph.uses(id) === 1);
}

export const attentionRules: Rule[] = [
  rule(
    'attention-chain',
    attentionPattern,
    ({ q, k, v, mask, cap, sel }, b, m) => {
      if (m.graph.type(q).shape.length !== 4) return m.root;
      const scale = m.values.scale ?? (m.values.inv_scale !== undefined ? 1 / m.values.inv_scale : 1);
      const attrs = { scale, softcap: cap !== undefined ? (b.node(cap).attrs.cap as number) : 0, causal: false, window: 0, groups: 1 };
      const ins = sel !== undefined ? [q, k, v, mask] : [q, k, v];
      const tq = b.type(q);
      const tk = b.type(k);
      if (typeof tq.shape[1] === 'number' && typeof tk.shape[1] === 'number' && tk.shape[1] > 0) attrs.groups = Math.max(1, tq.shape[1] / tk.shape[1]);
      try {
        inferType('fused_attention', ins.map((i) => b.type(i)), attrs);
      } catch (e) {
        if (e instanceof ShapeError) return m.root; // not an attention this op can express
        throw e;
      }
      return b.op('fused_attention', ins, attrs);
    },
    { when: (_v, m) => interiorSingleUse(m) },
  ),
];

export const attentionFusion: Pass = definePass({
  name: 'attention-fusion',
  description: 'matmul → scale → softcap → mask → softmax → matmul becomes one fused_attention (no [t, s] scores)',
  run: (g, ctx) => applyRules(g, attentionRules, ctx),
});
