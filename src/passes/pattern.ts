/**
 * A small pattern language over the IR. Patterns are plain data:
 *
 *   // softcap(x, c)  <=  c * tanh(x / c)
 *   pat.op('mul', [pat.op('tanh', [pat.op('div', [pat.v('x'), pat.const('c')])]), pat.const('c')])
 *
 * - `pat.v(name)` matches any node and binds it; the same name twice must be the same node.
 * - `pat.const(name)` matches a constant node (a scalar or a splat) and binds it; the same name twice must have
 *   the same value. `pat.const(2)` matches the value 2.
 * - `pat.op(op | [ops], inputs?, {attrs, as})` matches a node of that op whose inputs match `inputs` (any inputs
 *   when omitted); `attrs` values are compared with ===, or are predicates; `as` binds the node itself.
 *   Commutative ops (add, mul, max, min, and, or) also match with their two inputs swapped.
 * - `pat.oneOf(a, b, …)` tries alternatives in order (use it for optional pieces: `pat.oneOf(pat.op('mul',
 *   [s, pat.const('scale')]), s)`); `pat.any()` matches anything.
 *
 * Matching backtracks fully (a failing constraint further on makes an earlier alternative try the next one).
 */
import { AttrValue, Node, NodeId, TensorType } from '../ir/types';
import { decodeNumber } from '../ir/builder';

export type AttrTest = AttrValue | undefined | ((value: AttrValue | undefined, node: Node) => boolean);

export type Pattern =
  | { readonly kind: 'op'; readonly ops: readonly string[]; readonly inputs?: readonly Pattern[]; readonly attrs?: { readonly [k: string]: AttrTest }; readonly as?: string }
  | { readonly kind: 'var'; readonly name: string; readonly test?: (n: Node) => boolean }
  | { readonly kind: 'const'; readonly name?: string; readonly value?: number }
  | { readonly kind: 'oneOf'; readonly alts: readonly Pattern[] }
  | { readonly kind: 'any' };

export const COMMUTATIVE = new Set(['add', 'mul', 'max', 'min', 'and', 'or']);

export const pat = {
  op(op: string | readonly string[], inputs?: readonly Pattern[], opts: { attrs?: { [k: string]: AttrTest }; as?: string } = {}): Pattern {
    return { kind: 'op', ops: typeof op === 'string' ? [op] : op, inputs, attrs: opts.attrs, as: opts.as };
  },
  v(name: string, test?: (n: Node) => boolean): Pattern {
    return { kind: 'var', name, test };
  },
  const(nameOrValue?: string | number): Pattern {
    return typeof nameOrValue === 'number' ? { kind: 'const', value: nameOrValue } : { kind: 'const', name: nameOrValue };
  },
  oneOf(...alts: Pattern[]): Pattern {
    return { kind: 'oneOf', alts };
  },
  any(): Pattern {
    return { kind: 'any' };
  },
};

/** Read access the matcher and rule constraints need. */
export interface GraphView {
  node(id: NodeId): Node;
  type(id: NodeId): TensorType;
  /** Number of uses of a node: input slots of live nodes plus graph outputs and taps. */
  uses(id: NodeId): number;
}

export interface Match {
  readonly root: NodeId;
  /** Every name bound by `pat.v`, `pat.const` or `as`. */
  readonly nodes: { readonly [name: string]: NodeId };
  /** Values of the bound constants. */
  readonly values: { readonly [name: string]: number };
  /** The op nodes the pattern matched, root first (the nodes a replacement makes dead unless used elsewhere). */
  readonly matched: readonly NodeId[];
  readonly graph: GraphView;
}

/** The value of a constant node (scalar or splat), or undefined for anything else. */
export function constValue(n: Node): number | undefined {
  if (n.op !== 'constant') return undefined;
  try {
    return decodeNumber(n.attrs.value);
  } catch {
    return undefined;
  }
}

interface B {
  nodes: Record<string, NodeId>;
  values: Record<string, number>;
  matched: NodeId[];
}

function attrsOk(p: { attrs?: { readonly [k: string]: AttrTest } }, n: Node): boolean {
  if (!p.attrs) return true;
  for (const [k, t] of Object.entries(p.attrs)) {
    const v = n.attrs[k];
    if (typeof t === 'function') {
      if (!t(v, n)) return false;
    } else if (Array.isArray(t)) {
      if (!Array.isArray(v) || JSON.stringify(v) !== JSON.stringify(t)) return false;
    } else if (v !== t) return false;
  }
  return true;
}

function bindNode(b: B, name: string, id: NodeId): B | null {
  const prev = b.nodes[name];
  if (prev !== undefined) return prev === id ? b : null;
  return { ...b, nodes: { ...b.nodes, [name]: id } };
}

function m(g: GraphView, p: Pattern, id: NodeId, b: B, k: (b: B) => boolean): boolean {
  switch (p.kind) {
    case 'any':
      return k(b);
    case 'var': {
      if (p.test && !p.test(g.node(id))) return false;
      const b2 = bindNode(b, p.name, id);
      return !!b2 && k(b2);
    }
    case 'const': {
      const v = constValue(g.node(id));
      if (v === undefined) return false;
      if (p.value !== undefined && !(v === p.value || (Number.isNaN(v) && Number.isNaN(p.value)))) return false;
      if (p.name === undefined) return k(b);
      const pv = b.values[p.name];
      if (pv !== undefined) return (pv === v || Object.is(pv, v)) && k(b);
      return k({ nodes: { ...b.nodes, [p.name]: id }, values: { ...b.values, [p.name]: v }, matched: b.matched });
    }
    case 'oneOf':
      for (const a of p.alts) if (m(g, a, id, b, k)) return true;
      return false;
    case 'op': {
      const n = g.node(id);
      if (!p.ops.includes(n.op) || !attrsOk(p, n)) return false;
      let b1: B | null = p.as ? bindNode(b, p.as, id) : b;
      if (!b1) return false;
      b1 = { ...b1, matched: [...b1.matched, id] };
      const ins = p.inputs;
      if (!ins) return k(b1);
      if (ins.length !== n.inputs.length) return false;
      if (inputs(g, ins, n.inputs, 0, b1, k)) return true;
      if (ins.length === 2 && COMMUTATIVE.has(n.op) && n.inputs[0] !== n.inputs[1]) {
        return inputs(g, ins, [n.inputs[1], n.inputs[0]], 0, b1, k);
      }
      return false;
    }
  }
}

function inputs(g: GraphView, ps: readonly Pattern[], ids: readonly NodeId[], i: number, b: B, k: (b: B) => boolean): boolean {
  if (i === ps.length) return k(b);
  return m(g, ps[i], ids[i], b, (b2) => inputs(g, ps, ids, i + 1, b2, k));
}

/** Match `p` at node `root`; the first match for which `accept` holds (full backtracking), or null. */
export function matchAt(g: GraphView, p: Pattern, root: NodeId, accept?: (m: Match) => boolean): Match | null {
  let found: Match | null = null;
  m(g, p, root, { nodes: {}, values: {}, matched: [] }, (b) => {
    const mt: Match = { root, nodes: b.nodes, values: b.values, matched: b.matched, graph: g };
    if (accept && !accept(mt)) return false;
    found = mt;
    return true;
  });
  return found;
}

/** The ops a pattern can be rooted at (undefined: any op). */
export function rootOps(p: Pattern): readonly string[] | undefined {
  if (p.kind === 'op') return p.ops;
  if (p.kind === 'oneOf') {
    const all: string[] = [];
    for (const a of p.alts) {
      const r = rootOps(a);
      if (!r) return undefined;
      all.push(...r);
    }
    return all;
  }
  return undefined;
}
