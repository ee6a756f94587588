/**
 * Soft-cap folding: `c * tanh(x / c)` (and `c * tanh(x * (1/c))`) becomes one `softcap(x, cap = c)`; chains
 * of constant scales merge into one. A soft-capped Linear (the LM head) takes the cap as its matmul's epilogue;
 * the attention-fusion pass takes the attention's softcap and scale into the fused attention's score epilogue.
 */
import { typeEq } from '../ir/shape';
import { definePass, Pass } from './types';
import { applyRules, rule, Rule } from './rewrite';
import { pat } from './pattern';

const x = pat.v('x');
const validCap = (c: number) => c > 0 && Number.isFinite(c);

export const softcapRules: Rule[] = [
  // softcap(x, c)  <=  c * tanh(x / c)
  rule('c*tanh(x/c)', pat.op('mul', [pat.op('tanh', [pat.op('div', [x, pat.const('c')])]), pat.const('c')]), ({ x }, b, m) => b.op('softcap', [x], { cap: m.values.c }), {
    when: ({ x }, m) => validCap(m.values.c) && typeEq(m.graph.type(x), m.graph.type(m.root)),
  }),
  // softcap(x, c)  <=  c * tanh(x * r)   with r = 1/c (to float rounding)
  rule('c*tanh(x*r)', pat.op('mul', [pat.op('tanh', [pat.op('mul', [x, pat.const('r')])]), pat.const('c')]), ({ x }, b, m) => b.op('softcap', [x], { cap: m.values.c }), {
    when: ({ x }, m) => validCap(m.values.c) && Math.abs(m.values.c * m.values.r - 1) < 1e-6 && typeEq(m.graph.type(x), m.graph.type(m.root)),
  }),
  // matmul(a, w){softcap: c}  <=  softcap(matmul(a, w), c) for a Linear (rank-2 weight) whose only use is the
  // cap: the soft-cap becomes the matmul's epilogue (the LM head's final-logit cap), so the logits are written once.
  rule(
    'softcap(linear)→epilogue',
    pat.op('softcap', [pat.op('matmul', [pat.v('a'), pat.v('w')], { as: 'mm', attrs: { softcap: (v) => v === undefined || v === 0 } })]),
    ({ a, w, mm }, b, m) => b.op('matmul', [a, w], { ...m.graph.node(mm).attrs, softcap: m.graph.node(m.root).attrs.cap }),
    { when: ({ w, mm }, m) => m.graph.uses(mm) === 1 && m.graph.type(w).shape.length === 2 },
  ),
  // (x * a) * b  =>  x * (a·b): one scale instead of two
  rule('scale*scale', pat.op('mul', [pat.op('mul', [x, pat.const('a')], { as: 'inner' }), pat.const('b')]), ({ x }, b, m) => b.op('mul', [x, b.constant(m.values.a * m.values.b, b.type(x).dtype)]), {
    when: ({ x, inner }, m) => m.graph.uses(inner) === 1 && typeEq(m.graph.type(x), m.graph.type(m.root)),
  }),
];

export const softcapFolding: Pass = definePass({
  name: 'softcap-folding',
  description: 'c·tanh(x/c) → softcap(x, c); a soft-capped Linear takes the cap as its matmul epilogue; merge chains of constant scales',
  run: (g, ctx) => applyRules(g, softcapRules, ctx),
});
