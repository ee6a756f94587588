/**
 * Specialise a graph to concrete sizes of its symbolic dims (training graphs need them: the derivative of a
 * mean, and the masks of a recomputed attention, are built at concrete sizes). Every node is rebuilt through
 * its op's type rule, so the result is verified by construction. Unknown names are an error; dims not bound
 * stay symbolic.
 */
import { freeze } from 'immer';
import { AttrValue, Attrs, Graph, GraphBuilder, Node, ShapeError } from '../ir';

export function specializeDims(g: Graph, dims: Readonly<Record<string, number>>): Graph {
  for (const [k, v] of Object.entries(dims)) {
    if (!g.dims.includes(k)) throw new ShapeError(`the graph has no symbolic dimension '${k}' (it has: ${g.dims.join(', ') || 'none'})`);
    if (!Number.isInteger(v) || v < 1) throw new ShapeError(`dimension '${k}' must be a positive integer, got ${v}`);
    const max = g.dimBounds?.[k];
    if (max !== undefined && v > max) throw new ShapeError(`dimension '${k}' = ${v} is above the model's bound ${k} <= ${max}`);
  }
  if (!Object.keys(dims).length) return g;
  const sub = (v: AttrValue): AttrValue => {
    if (Array.isArray(v)) return v.map((x) => (typeof x === 'string' && x in dims ? dims[x] : sub(x)));
    if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, sub(x as AttrValue)]));
    return v;
  };
  const b = new GraphBuilder(g.name, 0);
  b.nextId = g.nextId;
  const rebuilt: Node[] = [];
  for (const n of g.nodes) {
    const attrs = sub(n.attrs as AttrValue) as Attrs;
    // Rebuild with the same id: push through the builder's public API by temporarily setting nextId.
    const save = b.nextId;
    b.nextId = n.id;
    const id = b.op(n.op, n.inputs, attrs, { scope: n.scope, ...(n.loc ? { loc: n.loc } : {}) });
    b.nextId = save;
    rebuilt.push(b.node(id));
  }
  const out = b.build({ outputs: g.outputs, taps: { ...g.taps }, dims: g.dims.filter((d) => !(d in dims)), hparams: { ...g.hparams }, variant: g.variant, dimBounds: g.dimBounds });
  return freeze({ ...out, name: g.name, nextId: g.nextId }, true);
}
