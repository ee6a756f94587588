/**
 * The rewrite engine: applies a list of rules (pattern → replacement, with constraints) to a fixed point.
 *
 *   const softcapRule = rule('mul-tanh-div', pat.op('mul', [pat.op('tanh', [pat.op('div', [pat.v('x'), pat.const('c')])]), pat.const('c')]),
 *     ({ x }, b, m) => b.op('softcap', [x], { cap: m.values.c }));
 *
 * A replacement receives the bound nodes, a GraphBuilder to create nodes with (types come from the op rules)
 * and the whole match; it returns the node that takes the root's place (same type), or the root itself to
 * decline. The engine redirects every use of the root (graph outputs and taps too), drops nodes that lost
 * their last use (never inputs or params: that is dead-code elimination's job), gives new nodes the root's
 * scope and location, re-sorts topologically once at the end, and records each rewrite in the trace.
 * The result is a new frozen graph, or the input object itself when no rule fired.
 */
import { GraphBuilder, NodeOpts } from '../ir/builder';
import { getOp } from '../ir/op';
import { Attrs, Graph, GraphOutput, Node, NodeId } from '../ir/types';
import { fmtType, typeEq } from '../ir/shape';
import { GraphView, Match, Matcher, Pattern, rootOps } from './pattern';
import { PassContext } from './types';
import { freezeDeep } from '../ir/freeze';

export interface Rule {
  readonly name: string;
  readonly pattern: Pattern;
  /** Extra constraint on a match (a failing constraint makes the matcher try other alternatives). */
  readonly when?: (v: Match['nodes'], m: Match) => boolean;
  /** Build the replacement; return the new node (of the root's type), or `m.root` to leave it alone. */
  readonly replace: (v: Match['nodes'], b: GraphBuilder, m: Match) => NodeId;
}

export function rule(name: string, pattern: Pattern, replace: Rule['replace'], opts: { when?: Rule['when'] } = {}): Rule {
  return { name, pattern, replace, when: opts.when };
}

export class RewriteError extends Error {
  constructor(
    message: string,
    readonly rule?: string,
  ) {
    super(message);
    this.name = 'RewriteError';
  }
}

/**
 * An empty array to index by node id, sized for the ids below `nextId`: filled in any order it stays a fast
 * array (filling an unsized one far beyond its length turns it into a slow dictionary).
 */
function idIndexed<T>(nextId: number): T[] {
  return Number.isSafeInteger(nextId) && nextId > 0 ? new Array<T>(nextId) : [];
}

/**
 * A GraphBuilder over a graph being rewritten: reads see rewired inputs, created nodes are tracked.
 * Per-node state lives in arrays indexed by node id (ids are small integers below nextId), and the users of
 * each node are worked out only when first needed: a pass whose rules never fire (or never ask for use
 * counts) does not pay for them. Loops over all nodes index arrays rather than use for..of: the iterator
 * objects were a measurable share of a compile's garbage.
 */
class RewriteBuilder extends GraphBuilder implements GraphView {
  /** Every node by id, with its inputs as rewired so far (dead ones included). */
  private readonly store: Node[];
  /** Ids in creation order: the input graph's order, then the nodes rules created. */
  readonly order: NodeId[] = [];
  /** The live nodes that use each node (each user once, however many of its inputs it is); built on demand. */
  private users: NodeId[][] | undefined;
  /** How many graph outputs and taps name each node. */
  private readonly rootRefs = new Map<NodeId, number>();
  readonly dead = new Set<NodeId>();
  created: NodeId[] = [];
  outputs: GraphOutput[];
  taps: { [scope: string]: NodeId };
  /** While a replacement runs, the node it replaces: new nodes take its scope and location. */
  replacing: Node | undefined;

  constructor(readonly g: Graph) {
    super(g.name, g.nextId);
    this.store = idIndexed(g.nextId);
    for (let k = 0; k < g.nodes.length; k++) {
      const n = g.nodes[k];
      (this as unknown as { push(n: Node): void }).push(n);
      this.store[n.id] = n;
      this.order.push(n.id);
    }
    this.outputs = g.outputs.map((o) => ({ ...o }));
    this.taps = { ...g.taps };
    for (const o of g.outputs) this.rootRefs.set(o.node, (this.rootRefs.get(o.node) ?? 0) + 1);
    for (const s in g.taps) this.rootRefs.set(g.taps[s], (this.rootRefs.get(g.taps[s]) ?? 0) + 1);
  }

  has(id: NodeId): boolean {
    return this.store[id] !== undefined;
  }

  override node(id: NodeId): Node {
    const n = this.store[id];
    if (!n) throw new Error(`no node %${id}`);
    return n;
  }

  override op(op: string, inputs: readonly NodeId[], attrs: Attrs = {}, opts: NodeOpts = {}): NodeId {
    const id = super.op(op, inputs, attrs, { scope: opts.scope ?? this.replacing?.scope, loc: opts.loc ?? this.replacing?.loc });
    const n = super.node(id);
    this.store[id] = n;
    this.order.push(id);
    if (this.users) this.addUses(this.users, n);
    this.created.push(id);
    return id;
  }

  /** Record `n` as a user of each of its inputs. */
  private addUses(users: NodeId[][], n: Node): void {
    users[n.id] ??= [];
    for (let k = 0; k < n.inputs.length; k++) {
      const us = users[n.inputs[k]];
      // a node using an input twice is listed once: its earlier slot has just pushed it
      if (us && us[us.length - 1] !== n.id) us.push(n.id);
    }
  }

  private userLists(): NodeId[][] {
    if (!this.users) {
      const users: NodeId[][] = idIndexed(this.nextId);
      const order = this.order;
      for (let k = 0; k < order.length; k++) users[order[k]] = [];
      for (let k = 0; k < order.length; k++) if (!this.dead.has(order[k])) this.addUses(users, this.store[order[k]]);
      this.users = users;
    }
    return this.users;
  }

  uses(id: NodeId): number {
    let k = this.rootRefs.get(id) ?? 0;
    const us = this.userLists()[id] ?? [];
    for (let j = 0; j < us.length; j++) {
      const ins = this.node(us[j]).inputs;
      for (let s = 0; s < ins.length; s++) if (ins[s] === id) k++;
    }
    return k;
  }

  /** Redirect every use of `old` to `nu` (except in nodes listed in `skip`), then drop what became dead. */
  replaceUses(old: NodeId, nu: NodeId, skip: ReadonlySet<NodeId>): void {
    const users = this.userLists();
    const nuUsers = users[nu];
    const kept: NodeId[] = [];
    for (const u of users[old]) {
      if (skip.has(u)) {
        kept.push(u);
        continue;
      }
      const n = this.node(u);
      this.store[u] = { ...n, inputs: n.inputs.map((i) => (i === old ? nu : i)) };
      if (!nuUsers.includes(u)) nuUsers.push(u);
    }
    users[old] = kept;
    const r = this.rootRefs.get(old);
    if (r) {
      this.rootRefs.delete(old);
      this.rootRefs.set(nu, (this.rootRefs.get(nu) ?? 0) + r);
      this.outputs = this.outputs.map((o) => (o.node === old ? { ...o, node: nu } : o));
      for (const s in this.taps) if (this.taps[s] === old) this.taps[s] = nu;
    }
    this.killIfDead(old);
  }

  killIfDead(id: NodeId): void {
    const users = this.userLists();
    const stack = [id];
    while (stack.length) {
      const x = stack.pop()!;
      if (this.dead.has(x) || this.uses(x) > 0) continue;
      const n = this.node(x);
      if (getOp(n.op).source) continue;
      this.dead.add(x);
      for (let k = 0; k < n.inputs.length; k++) {
        const i = n.inputs[k];
        if (n.inputs.indexOf(i) < k) continue; // each input once
        const us = users[i];
        const at = us ? us.indexOf(x) : -1;
        if (at >= 0) us.splice(at, 1);
        stack.push(i);
      }
    }
  }

  /** The rewritten graph: live nodes in a topological order that keeps the original order where it can. */
  result(): Graph {
    const out: Node[] = [];
    const state: number[] = idIndexed(this.nextId); // by id: 1 = on stack, 2 = emitted
    // depth-first over inputs: the nodes on the path, and how many inputs of each have been visited
    const path: Node[] = [];
    const next: number[] = [];
    for (let r = 0; r < this.order.length; r++) {
      const root = this.order[r];
      if (this.dead.has(root) || state[root] === 2) continue;
      path.push(this.node(root));
      next.push(0);
      state[root] = 1;
      while (path.length) {
        const n = path[path.length - 1];
        const k = next[next.length - 1];
        if (k < n.inputs.length) {
          next[next.length - 1] = k + 1;
          const i = n.inputs[k];
          const s = state[i];
          if (s === 1) throw new RewriteError(`the rewrite created a cycle through %${i}`);
          if (s !== 2) {
            state[i] = 1;
            path.push(this.node(i));
            next.push(0);
          }
        } else {
          path.pop();
          next.pop();
          state[n.id] = 2;
          out.push(n);
        }
      }
    }
    const g: Graph = { ...this.g, nodes: out, outputs: this.outputs, taps: this.taps, nextId: this.nextId };
    return freezeDeep(g);
  }
}

export interface RewriteOptions {
  /** Upper bound on sweeps over the graph (default 20): a rule set that keeps firing is an error. */
  readonly maxIterations?: number;
}

/** A rule with its constraint in the form the matcher takes. */
interface Candidate {
  readonly rule: Rule;
  readonly accept?: (m: Match) => boolean;
}

/** The rules to try at a node, by its op: those rooted at that op, then those rooted at any op (rule order kept in each). */
function candidatesByOp(rules: readonly Rule[]): { byOp: Map<string, Candidate[]>; anyOp: Candidate[] } {
  const byOp = new Map<string, Candidate[]>();
  const anyOp: Candidate[] = [];
  for (const rule of rules) {
    const c: Candidate = { rule, accept: rule.when && ((mm) => rule.when!(mm.nodes, mm)) };
    const ops = rootOps(rule.pattern);
    if (!ops) anyOp.push(c);
    else for (const o of ops) byOp.set(o, [...(byOp.get(o) ?? []), c]);
  }
  for (const [o, cs] of byOp) byOp.set(o, [...cs, ...anyOp]);
  return { byOp, anyOp };
}

/** Apply `rules` to a fixed point. Returns `g` itself when nothing fired. */
export function applyRules(g: Graph, rules: readonly Rule[], ctx?: Pick<PassContext, 'record'>, opts: RewriteOptions = {}): Graph {
  const { byOp, anyOp } = candidatesByOp(rules);
  const rb = new RewriteBuilder(g);
  const matcher = new Matcher();
  const maxIt = opts.maxIterations ?? 20;
  let total = 0;
  for (let it = 0; ; it++) {
    let changed = false;
    for (let idx = 0; idx < rb.order.length; idx++) {
      const id = rb.order[idx];
      if (rb.dead.has(id)) continue;
      const n = rb.node(id);
      const cands = byOp.get(n.op) ?? anyOp;
      for (let ci = 0; ci < cands.length; ci++) {
        const { rule: r, accept } = cands[ci];
        if (rb.dead.has(id)) break;
        const mt = matcher.match(rb, r.pattern, id, accept);
        if (!mt) continue;
        rb.created = [];
        rb.replacing = n;
        let nu: NodeId;
        try {
          nu = r.replace(mt.nodes, rb, mt);
        } catch (e) {
          throw new RewriteError(`rule '${r.name}' failed at %${id} (${n.op}, scope '${n.scope}'): ${(e as Error).message}`, r.name);
        } finally {
          rb.replacing = undefined;
        }
        if (nu === id) {
          for (const c of rb.created) rb.killIfDead(c);
          continue;
        }
        if (!rb.has(nu) || rb.dead.has(nu)) throw new RewriteError(`rule '${r.name}' returned %${nu}, which is not a live node`, r.name);
        if (!typeEq(rb.type(nu), n.type)) {
          throw new RewriteError(`rule '${r.name}' replaced %${id} of type ${fmtType(n.type)} with %${nu} of type ${fmtType(rb.type(nu))}`, r.name);
        }
        const created = rb.created;
        rb.replaceUses(id, nu, new Set(created));
        for (const c of created) rb.killIfDead(c);
        const liveCreated = created.filter((c) => !rb.dead.has(c));
        ctx?.record({
          rule: r.name,
          replaced: mt.matched.filter((x) => rb.dead.has(x)),
          created: [nu, ...liveCreated.filter((c) => c !== nu)].filter((c) => liveCreated.includes(c) || c === nu),
          scope: n.scope,
        });
        changed = true;
        if (++total > 100 * (g.nodes.length + 100)) throw new RewriteError(`rules keep firing (${total} rewrites): the rule set does not converge`);
        break;
      }
    }
    if (!changed) break;
    if (it + 1 >= maxIt) throw new RewriteError(`rules still firing after ${maxIt} sweeps over the graph: the rule set does not converge`);
  }
  return total === 0 ? g : rb.result();
}
