// A user pass: fuse Gemma's RMSNorm, x * rsqrt(mean(x * x, -1) + eps) * (1 + w), into one `rmsnorm` op.
//
//   lapidary compile gemma2.model --variant 2b --plugin examples/passes/fuse-rmsnorm.mjs
//
// The plugin default-exports a function that receives the compiler's API (the same module as
// `import ... from 'lapidary'`), defines the op it needs (all facets: type rule, CPU, XLA) and returns the pass.
export default function (api) {
  const { defineOp, hasOp, definePass, applyRules, rule, pat, typeEq } = api;

  if (!hasOp('rmsnorm')) {
    defineOp({
      name: 'rmsnorm',
      doc: 'x * rsqrt(mean(x², last axis) + eps) * (1 + w)  (Gemma RMSNorm)',
      arity: 2,
      attrs: ['eps'],
      infer: ([x, w]) => {
        if (w.shape.length !== 1 || w.shape[0] !== x.shape[x.shape.length - 1]) throw new api.ShapeError('rmsnorm: w must be [last dim of x]');
        return x;
      },
      // same operation order as the primitive form, so the fusion is exact on CPU
      cpu: ({ tf }, [x, w], n) => tf.mul(tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.mul(x, x), -1, true), n.attrs.eps))), tf.add(1, w)),
      xla: (b, [x, w], n) => {
        const s = x.type.shape;
        const r = s.length - 1;
        const keep = s.map((_, i) => i).filter((i) => i !== r);
        const ms = b.binary('divide', b.reduce(b.binary('multiply', x, x), [r], 'add'), b.constant(s[r], { dtype: x.type.dtype, shape: keep.map((i) => s[i]) }));
        const inv = b.unary('rsqrt', b.binary('add', ms, b.constant(n.attrs.eps, ms.type)));
        const one = b.binary('add', b.constant(1, w.type), w);
        return b.binary('multiply', b.binary('multiply', x, b.broadcastInDim(inv, s, keep)), b.broadcastInDim(one, s, [r]));
      },
    });
  }

  const x = pat.v('x');
  const meanSq = pat.op('reduce', [pat.op('mul', [x, x])], { attrs: { kind: 'mean', keepdims: true, axes: (a, n) => JSON.stringify(a) === '[-1]' || JSON.stringify(a) === `[${n.type.shape.length - 1}]` } });
  const norm = pat.op('mul', [pat.op('mul', [x, pat.op('rsqrt', [pat.op('add', [meanSq, pat.const('eps')])])]), pat.op('add', [pat.const(1), pat.v('w')])]);

  return definePass({
    name: 'fuse-rmsnorm',
    description: 'x·rsqrt(mean(x²)+eps)·(1+w) → rmsnorm(x, w, eps)',
    run: (g, ctx) =>
      applyRules(
        g,
        [
          rule('gemma-rmsnorm', norm, ({ x, w }, b, m) => b.op('rmsnorm', [x, w], { eps: m.values.eps }), {
            when: ({ x, w }, m) => m.graph.type(w).shape.length === 1 && typeEq(m.graph.type(x), m.graph.type(m.root)),
          }),
        ],
        ctx,
      ),
  });
}
