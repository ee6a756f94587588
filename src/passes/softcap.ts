/**
 * Soft-cap folding: `c * tanh(x / c)` (and `c * tanh(x * (1/c))`) becomes one `softcap(x, cap = c)`; chains
 * of constant scales merge into one. The attention-fusion pass then takes the softcap and the scale into
 * the fused attention's score epilogue.
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
  // (x * a) * b  =>  x * (a·b): one scale instead of two
  rule('scale*scale', pat.op('mul', [pat.op('mul', [x, pat.const('a')], { as: 'inner' }), pat.const('b')]), ({ x }, b, m) => b.op('mul', [x, b.constant(m.values.a * m.values.b, b.type(x).dtype)]), {
    when: ({ x, inner }, m) => m.graph.uses(inner) === 1 && typeEq(m.graph.type(x), m.graph.type(m.root)),
  }),
];

export const softcapFolding: Pass = definePass({
  name: 'softcap-folding',
  description: 'c·tanh(x/c) → softcap(x, c); merge chains of constant scales',
  run: (g, ctx) => applyRules(g, softcapRules, ctx),
});
