import { defineOp } from '../op';
import { ShapeError, concreteDim, fmtType } from '../shape';
import { Dim } from '../types';
import { normAxes } from './_kinds';

/** Reduction over `axes` with kind sum | max | mean; `keepdims` keeps reduced axes as size 1. */
export const reduce = defineOp({
  name: 'reduce',
  doc: 'sum / max / mean over axes',
  arity: 1,
  attrs: ['kind', 'axes'],
  infer: ([x], a) => {
    if (!['sum', 'max', 'mean'].includes(String(a.kind))) throw new ShapeError(`reduce: unknown kind '${String(a.kind)}'`);
    if (x.dtype === 'bool') throw new ShapeError(`reduce needs a numeric operand, got ${fmtType(x)}`);
    const axes = normAxes(a, x.shape.length);
    const shape: Dim[] = [];
    x.shape.forEach((d, i) => {
      if (!axes.includes(i)) shape.push(d);
      else if (a.keepdims) shape.push(1);
    });
    return { dtype: x.dtype, shape };
  },
  cpu: ({ tf }, [x], n) => {
    const axes = normAxes(n.attrs, x.rank);
    const keep = !!n.attrs.keepdims;
    return n.attrs.kind === 'sum' ? tf.sum(x, axes, keep) : n.attrs.kind === 'max' ? tf.max(x, axes, keep) : tf.mean(x, axes, keep);
  },
  xla: (b, [x], n, out) => {
    const axes = normAxes(n.attrs, x.type.shape.length);
    let r = b.reduce(x, axes, n.attrs.kind === 'max' ? 'max' : 'add');
    if (n.attrs.kind === 'mean') {
      const count = axes.reduce((a, i) => a * x.type.shape[i], 1);
      r = b.binary('divide', r, b.constant(count, r.type));
    }
    return n.attrs.keepdims ? b.reshape(r, out.shape) : r;
  },
  vjp: (g, n, dy) => {
    const x = n.inputs[0];
    const xt = g.type(x);
    const axes = normAxes(n.attrs, xt.shape.length);
    const kept = xt.shape.map((d, i) => (axes.includes(i) ? 1 : d));
    const dyk = n.attrs.keepdims ? dy : g.op('reshape', [dy], { shape: kept });
    if (n.attrs.kind === 'max') {
      const outk = n.attrs.keepdims ? n.id : g.op('reshape', [n.id], { shape: kept });
      const hit = g.op('compare', [x, outk], { dir: 'eq' });
      return [g.op('select', [hit, g.op('broadcast', [dyk], { shape: [...xt.shape] }), g.constant(0, xt.dtype)])];
    }
    let dx = g.op('broadcast', [dyk], { shape: [...xt.shape] });
    if (n.attrs.kind === 'mean') {
      const sym = axes.filter((i) => typeof xt.shape[i] !== 'number');
      if (sym.length) throw new ShapeError('the derivative of a mean over a symbolic dimension needs concrete sizes');
      const count = axes.reduce((a, i) => a * concreteDim(xt.shape[i], {}), 1);
      dx = g.op('div', [dx, g.constant(count, xt.dtype)]);
    }
    return [dx];
  },
});
