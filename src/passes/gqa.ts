/**
 * GQA head sharing: the front end repeats each K/V head for its query group,
 * reshape [b, kv, s, d] → [b, kv, 1, s, d] → broadcast [b, kv, g, s, d] → reshape [b, kv·g, s, d];
 * this pass feeds the un-repeated K and V to fused_attention and multiplies its `groups` by g, so the K/V
 * tensors (and their bytes) shrink by the group factor and nothing is copied.
 */
import { NodeId } from '../ir/types';
import { dimEq, shapeEq } from '../ir/shape';
import { definePass, Pass } from './types';
import { applyRules, rule, Rule } from './rewrite';
import { GraphView, pat } from './pattern';

/** If `id` is a repeat of K/V heads, the un-repeated tensor and the repeat factor. */
export function repeatedHeads(g: GraphView, id: NodeId): { src: NodeId; rep: number } | null {
  const r2 = g.node(id);
  if (r2.op !== 'reshape') return null;
  const bc = g.node(r2.inputs[0]);
  if (bc.op !== 'broadcast') return null;
  const r1 = g.node(bc.inputs[0]);
  if (r1.op !== 'reshape') return null;
  const src = r1.inputs[0];
  const [b, kv, s, d] = g.type(src).shape;
  if (g.type(src).shape.length !== 4) return null;
  const rep = bc.type.shape[2];
  if (typeof rep !== 'number' || typeof kv !== 'number') return null;
  if (!shapeEq(r1.type.shape, [b, kv, 1, s, d]) || !shapeEq(bc.type.shape, [b, kv, rep, s, d]) || !shapeEq(r2.type.shape, [b, kv * rep, s, d])) return null;
  return dimEq(rep, rep) ? { src, rep } : null;
}

export const gqaRules: Rule[] = [
  rule('unrepeat-kv', pat.op('fused_attention'), (_v, b, m) => {
    const n = b.node(m.root);
    const [q, k, v, ...mask] = n.inputs;
    const rk = repeatedHeads(m.graph, k);
    const rv = repeatedHeads(m.graph, v);
    if (!rk || !rv || rk.rep !== rv.rep) return m.root;
    return b.op('fused_attention', [q, rk.src, rv.src, ...mask], { ...n.attrs, groups: (n.attrs.groups as number) * rk.rep });
  }),
];

export const gqaHeadSharing: Pass = definePass({
  name: 'gqa',
  description: 'K/V head repetition (reshape → broadcast → reshape) becomes fused_attention groups: K/V shared, not copied',
  run: (g, ctx) => applyRules(g, gqaRules, ctx),
});
