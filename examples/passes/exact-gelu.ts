// A user pass in TypeScript: swap the tanh approximation of GELU for the exact, erf-based GELU, after
// checking numerically that the two agree closely enough for this model.
//
//   lapidary compile gemma2.model --variant 2b --plugin examples/passes/exact-gelu.ts --pass-after constant-folding
//
// TypeScript plugins are compiled on the fly (esbuild); `import ... from 'lapidary'` resolves to the
// running compiler. Note: Gemma 2 was trained with the tanh form, so this changes the model slightly (by up
// to ~5e-4 per activation, see the check below) — it is an example of a model edit, not an optimisation.
import { defineOp, hasOp, definePass, applyRules, rule, pat, XlaBuilder, XlaValue } from 'lapidary';

const SQRT1_2 = Math.SQRT1_2;

/** erf by Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7): plain HLO ops, no custom call. */
function xlaErf(b: XlaBuilder, x: XlaValue): XlaValue {
  const c = (v: number) => b.constant(v, x.type);
  const ax = b.unary('abs', x);
  const t = b.binary('divide', c(1), b.binary('add', c(1), b.binary('multiply', c(0.3275911), ax)));
  let poly = c(1.061405429);
  for (const k of [-1.453152027, 1.421413741, -0.284496736, 0.254829592]) poly = b.binary('add', b.binary('multiply', poly, t), c(k));
  const y = b.binary('subtract', c(1), b.binary('multiply', b.binary('multiply', poly, t), b.unary('exponential', b.unary('negate', b.binary('multiply', ax, ax)))));
  const sign = b.select(b.compare('LT', x, c(0)), c(-1), c(1));
  return b.binary('multiply', sign, y);
}

if (!hasOp('gelu_erf')) {
  defineOp({
    name: 'gelu_erf',
    doc: 'exact GELU: 0.5 x (1 + erf(x / sqrt 2))',
    arity: 1,
    elementwise: true,
    infer: ([x]) => x,
    cpu: ({ tf }, [x]) => tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, SQRT1_2)), 1)),
    xla: (b, [x]) => {
      const c = (v: number) => b.constant(v, x.type);
      return b.binary('multiply', b.binary('multiply', x, c(0.5)), b.binary('add', xlaErf(b, b.binary('multiply', x, c(SQRT1_2))), c(1)));
    },
  });
}

/** The largest |gelu_tanh(x) − gelu(x)| on a grid over [-8, 8] (double precision). */
function maxDeviation(): number {
  const erf = (z: number) => {
    // series / continued fraction would do; A&S 7.1.26 is enough for a 1e-6-level comparison
    const t = 1 / (1 + 0.3275911 * Math.abs(z));
    const y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-z * z);
    return z < 0 ? -y : y;
  };
  let m = 0;
  for (let x = -8; x <= 8; x += 1 / 64) {
    const approx = 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
    const exact = 0.5 * x * (1 + erf(x * SQRT1_2));
    m = Math.max(m, Math.abs(approx - exact));
  }
  return m;
}

const TOLERANCE = 1e-3;

export default definePass({
  name: 'exact-gelu',
  description: `gelu_tanh(x) → gelu_erf(x) (checked: the two differ by < ${TOLERANCE} everywhere)`,
  run: (g, ctx) => {
    const dev = maxDeviation();
    ctx.log(`max |gelu_tanh − gelu| = ${dev.toExponential(2)}`);
    if (dev > TOLERANCE) throw new Error(`tanh-GELU deviates from exact GELU by ${dev}, above ${TOLERANCE}`);
    return applyRules(g, [rule('tanh→erf', pat.op('gelu_tanh', [pat.v('x')]), ({ x }, b) => b.op('gelu_erf', [x]))], ctx);
  },
});
