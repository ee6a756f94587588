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

/** A binding name: bindings are properties of `Match.nodes`, so a name Object.prototype already has is refused. */
function bindingName<T extends string | undefined>(name: T): T {
  if (name !== undefined && name in Object.prototype) throw new Error(`pattern name '${name}' is reserved (a built-in property of JavaScript objects): choose another`);
  return name;
}

export const pat = {
  op(op: string | readonly string[], inputs?: readonly Pattern[], opts: { attrs?: { [k: string]: AttrTest }; as?: string } = {}): Pattern {
    return { kind: 'op', ops: typeof op === 'string' ? [op] : op, inputs, attrs: opts.attrs, as: bindingName(opts.as) };
  },
  v(name: string, test?: (n: Node) => boolean): Pattern {
    return { kind: 'var', name: bindingName(name), test };
  },
  const(nameOrValue?: string | number): Pattern {
    return typeof nameOrValue === 'number' ? { kind: 'const', value: nameOrValue } : { kind: 'const', name: bindingName(nameOrValue) };
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

/**
 * The bindings on the current search path, as stacks (a pattern binds a handful of names): a step pushes onto
 * them before trying the rest of the match and truncates them back when that fails, so backtracking allocates
 * nothing. A successful match is copied out into a Match.
 */
interface B {
  /** Names bound by `pat.v`, `pat.const` and `as` with their nodes, and for `pat.const` their values (a later entry for a name wins). */
  readonly names: string[];
  readonly ids: NodeId[];
  readonly values: (number | undefined)[];
  /** The op nodes matched so far. */
  readonly matched: NodeId[];
}

type Rest = () => boolean;

function attrsOk(p: { attrs?: { readonly [k: string]: AttrTest } }, n: Node): boolean {
  if (!p.attrs) return true;
  for (const k of Object.keys(p.attrs)) {
    const t = p.attrs[k];
    const v = n.attrs[k];
    if (typeof t === 'function') {
      if (!t(v, n)) return false;
    } else if (Array.isArray(t)) {
      if (!Array.isArray(v) || JSON.stringify(v) !== JSON.stringify(t)) return false;
    } else if (v !== t) return false;
  }
  return true;
}

/** Bind `name` to `id`: false if it is bound to another node already. */
function bindNode(b: B, name: string, id: NodeId): boolean {
  const at = b.names.lastIndexOf(name);
  if (at >= 0) return b.ids[at] === id;
  b.names.push(name);
  b.ids.push(id);
  b.values.push(undefined);
  return true;
}

/** The value a `pat.const` bound to `name`, or undefined. */
function boundValue(b: B, name: string): number | undefined {
  for (let i = b.names.length - 1; i >= 0; i--) if (b.names[i] === name && b.values[i] !== undefined) return b.values[i];
  return undefined;
}

/** Drop the bindings made since the stacks had `mark` entries. */
function unbind(b: B, mark: number): void {
  b.names.length = mark;
  b.ids.length = mark;
  b.values.length = mark;
}

function m(g: GraphView, p: Pattern, id: NodeId, b: B, k: Rest): boolean {
  const mark = b.names.length;
  switch (p.kind) {
    case 'any':
      return k();
    case 'var':
      if (p.test && !p.test(g.node(id))) return false;
      if (!bindNode(b, p.name, id)) return false;
      break;
    case 'const': {
      const v = constValue(g.node(id));
      if (v === undefined) return false;
      if (p.value !== undefined && !(v === p.value || (Number.isNaN(v) && Number.isNaN(p.value)))) return false;
      if (p.name === undefined) return k();
      const pv = boundValue(b, p.name);
      if (pv !== undefined) return (pv === v || Object.is(pv, v)) && k();
      // binds the node (whatever the name was bound to before) and the value
      b.names.push(p.name);
      b.ids.push(id);
      b.values.push(v);
      break;
    }
    case 'oneOf':
      for (const a of p.alts) if (m(g, a, id, b, k)) return true;
      return false;
    case 'op': {
      const n = g.node(id);
      const ins = p.inputs;
      if (!p.ops.includes(n.op) || !attrsOk(p, n) || (ins && ins.length !== n.inputs.length)) return false;
      if (p.as && !bindNode(b, p.as, id)) return false;
      b.matched.push(id);
      if (opInputs(g, ins, n, b, k)) return true;
      b.matched.pop();
      unbind(b, mark);
      return false;
    }
  }
  if (k()) return true;
  unbind(b, mark);
  return false;
}

/** Match an op's input patterns (none: any inputs), then the rest; commutative ops also try their inputs swapped. */
function opInputs(g: GraphView, ins: readonly Pattern[] | undefined, n: Node, b: B, k: Rest): boolean {
  if (!ins) return k();
  if (inputs(g, ins, n.inputs, 0, b, k)) return true;
  return ins.length === 2 && COMMUTATIVE.has(n.op) && n.inputs[0] !== n.inputs[1] && inputs(g, ins, [n.inputs[1], n.inputs[0]], 0, b, k);
}

function inputs(g: GraphView, ps: readonly Pattern[], ids: readonly NodeId[], i: number, b: B, k: Rest): boolean {
  if (i === ps.length) return k();
  return m(g, ps[i], ids[i], b, () => inputs(g, ps, ids, i + 1, b, k));
}

/** Match `p` at node `root`; the first match for which `accept` holds (full backtracking), or null. */
export function matchAt(g: GraphView, p: Pattern, root: NodeId, accept?: (m: Match) => boolean): Match | null {
  return new Matcher().match(g, p, root, accept);
}

/**
 * matchAt with binding stacks kept from one match to the next: the rewrite engine tries its rules at every
 * node, and allocating the stacks afresh for each try was a large share of its garbage. One Matcher must not
 * be re-entered (an `accept` that matches uses matchAt, i.e. a Matcher of its own).
 */
export class Matcher {
  private readonly b: B = { names: [], ids: [], values: [], matched: [] };

  match(g: GraphView, p: Pattern, root: NodeId, accept?: (m: Match) => boolean): Match | null {
    const b = this.b;
    unbind(b, 0); // a successful match leaves its bindings
    b.matched.length = 0;
    let found: Match | null = null;
    m(g, p, root, b, () => {
      const nodes: Record<string, NodeId> = {};
      const values: Record<string, number> = {};
      for (let i = 0; i < b.names.length; i++) {
        nodes[b.names[i]] = b.ids[i];
        if (b.values[i] !== undefined) values[b.names[i]] = b.values[i]!;
      }
      const mt: Match = { root, nodes, values, matched: [...b.matched], graph: g };
      if (accept && !accept(mt)) return false;
      found = mt;
      return true;
    });
    return found;
  }
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
