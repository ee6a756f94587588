/**
 * GraphBuilder: the one way nodes are created — by the front end, by pass replacements and by autodiff.
 * Every node's type comes from its op's rule in the registry.
 */
import { freezeDeep } from './freeze';
import { Attrs, DType, Graph, GraphOutput, Node, NodeId, Shape, SourceLoc, TensorType } from './types';
import { inferType } from './op';
import { ShapeError, fmtType, typeEq } from './shape';

export interface NodeOpts {
  readonly scope?: string;
  readonly loc?: SourceLoc;
}

/** Defaults for `op`: shared frozen objects instead of a fresh `{}` per node. */
const NO_ATTRS: Attrs = Object.freeze({});
const NO_OPTS: NodeOpts = Object.freeze({});

export class GraphBuilder {
  readonly nodes: Node[] = [];
  /** Nodes indexed by id (small non-negative integers): cheaper than a Map for tens of thousands of nodes. */
  private readonly byId: Node[];
  private readonly params = new Map<string, NodeId>();
  private readonly inputsByName = new Map<string, NodeId>();
  nextId: NodeId;
  /** Scope and location given to new nodes unless overridden. */
  scope = '';
  loc: SourceLoc | undefined;

  constructor(
    readonly name = 'graph',
    nextId = 0,
  ) {
    this.nextId = nextId;
    // Sized up front: a graph's nodes are not in id order, and writing far past an array's end makes it sparse (slow).
    this.byId = new Array<Node>(nextId);
  }

  /** Continue building on an existing graph (its nodes come first, ids are kept). */
  static from(g: Graph): GraphBuilder {
    const b = new GraphBuilder(g.name, g.nextId);
    for (const n of g.nodes) b.push(n);
    return b;
  }

  private push(n: Node): void {
    this.nodes.push(n);
    this.byId[n.id] = n;
    if (n.op === 'param') this.params.set(String(n.attrs.name), n.id);
    if (n.op === 'input') this.inputsByName.set(String(n.attrs.name), n.id);
  }

  node(id: NodeId): Node {
    const n = this.byId[id];
    if (!n) throw new Error(`no node %${id}`);
    return n;
  }

  type(id: NodeId): TensorType {
    return this.node(id).type;
  }

  /** Add a node; its type is inferred by the op's rule (throws ShapeError on bad input). */
  op(op: string, inputs: readonly NodeId[], attrs: Attrs = NO_ATTRS, opts: NodeOpts = NO_OPTS): NodeId {
    const types = new Array<TensorType>(inputs.length);
    for (let i = 0; i < inputs.length; i++) types[i] = this.type(inputs[i]);
    const type = inferType(op, types, attrs);
    const id = this.nextId++;
    const scope = opts.scope ?? this.scope;
    const loc = opts.loc ?? this.loc;
    // Two literals rather than a spread of `loc`: no temporary object, and same key order either way.
    const n: Node = loc ? { id, op, inputs: inputs.slice(), attrs, type, scope, loc } : { id, op, inputs: inputs.slice(), attrs, type, scope };
    this.push(n);
    return id;
  }

  /** A scalar (or splatted) constant. */
  constant(value: number, dtype: DType = 'f32', shape: Shape = [], opts: NodeOpts = {}): NodeId {
    return this.op('constant', [], { value: encodeNumber(value), dtype, shape: [...shape] }, opts);
  }

  input(name: string, type: TensorType, extra: Attrs = {}, opts: NodeOpts = {}): NodeId {
    if (this.inputsByName.has(name)) throw new ShapeError(`input '${name}' is declared twice`);
    return this.op('input', [], { name, dtype: type.dtype, shape: [...type.shape], ...extra }, opts);
  }

  /** A learned tensor, named as in the checkpoint. Declaring the same name again returns the same node. */
  param(name: string, type: TensorType, opts: NodeOpts = {}): NodeId {
    const prev = this.params.get(name);
    if (prev !== undefined) {
      const t = this.type(prev);
      if (!typeEq(t, type)) throw new ShapeError(`param '${name}' was declared as ${fmtType(t)}, now as ${fmtType(type)}`);
      return prev;
    }
    return this.op('param', [], { name, dtype: type.dtype, shape: [...type.shape] }, opts);
  }

  /** Run `fn` with a scope (and optionally a location) for the nodes it creates. */
  within<T>(scope: string, fn: () => T, loc?: SourceLoc): T {
    const s = this.scope;
    const l = this.loc;
    this.scope = scope;
    if (loc) this.loc = loc;
    try {
      return fn();
    } finally {
      this.scope = s;
      this.loc = l;
    }
  }

  build(meta: {
    outputs: readonly GraphOutput[];
    taps?: { [scope: string]: NodeId };
    dims?: readonly string[];
    hparams?: { [k: string]: number | boolean | string };
    variant?: string;
    dimBounds?: { readonly [dim: string]: number };
  }): Graph {
    // An indexed loop: build runs once per graph, mostly unoptimised, where `for..of` allocates per element.
    for (let i = 0; i < this.nodes.length; i++) freezeNode(this.nodes[i]);
    Object.freeze(this.nodes);
    const g: Graph = {
      name: this.name,
      nodes: this.nodes,
      outputs: meta.outputs,
      taps: meta.taps ?? {},
      dims: meta.dims ?? [],
      hparams: meta.hparams ?? {},
      ...(meta.variant !== undefined ? { variant: meta.variant } : {}),
      ...(meta.dimBounds !== undefined ? { dimBounds: { ...meta.dimBounds } } : {}),
      nextId: this.nextId,
    };
    return freezeDeep(g);
  }
}

/**
 * Deep-freeze one node. Nodes have a fixed shape (`Node` in types.ts), so its parts are frozen directly rather
 * than by walking `Object.keys` of every node and type (most of the cost of freezing a 25k-node training step).
 * Frozen nodes (copied from a frozen graph) and frozen parts (types and locations shared between nodes) are skipped.
 */
function freezeNode(n: Node): void {
  if (Object.isFrozen(n)) return;
  Object.freeze(n.inputs);
  freezeDeep(n.attrs);
  const t = n.type;
  if (!Object.isFrozen(t)) {
    Object.freeze(t.shape);
    Object.freeze(t);
  }
  if (n.loc) Object.freeze(n.loc);
  Object.freeze(n);
}

/** JSON has no infinities or NaN: constants store them as strings. */
export function encodeNumber(v: number): number | string {
  if (Number.isFinite(v)) return v;
  return Number.isNaN(v) ? 'nan' : v > 0 ? 'inf' : '-inf';
}

export function decodeNumber(v: unknown): number {
  if (typeof v === 'number') return v;
  if (v === 'inf') return Infinity;
  if (v === '-inf') return -Infinity;
  if (v === 'nan') return NaN;
  throw new ShapeError(`not a number: ${JSON.stringify(v)}`);
}
