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
import { freeze } from 'immer';
import { GraphBuilder, NodeOpts } from '../ir/builder';
import { getOp } from '../ir/op';
import { Attrs, Graph, GraphOutput, Node, NodeId } from '../ir/types';
import { fmtType, typeEq } from '../ir/shape';
import { GraphView, Match, Pattern, matchAt, rootOps } from './pattern';
import { PassContext } from './types';

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

/** A GraphBuilder over a graph being rewritten: reads see rewired inputs, created nodes are tracked. */
class RewriteBuilder extends GraphBuilder implements GraphView {
  readonly store = new Map<NodeId, Node>();
  readonly order: NodeId[] = [];
  readonly users = new Map<NodeId, Set<NodeId>>();
  readonly rootRefs = new Map<NodeId, number>();
  readonly dead = new Set<NodeId>();
  created: NodeId[] = [];
  outputs: GraphOutput[];
  taps: { [scope: string]: NodeId };
  /** Scope and location for new nodes while a replacement runs. */
  defaults: NodeOpts = {};

  constructor(readonly g: Graph) {
    super(g.name, g.nextId);
    for (const n of g.nodes) {
      (this as unknown as { push(n: Node): void }).push(n);
      this.add(n);
    }
    this.outputs = g.outputs.map((o) => ({ ...o }));
    this.taps = { ...g.taps };
    for (const o of g.outputs) this.rootRefs.set(o.node, (this.rootRefs.get(o.node) ?? 0) + 1);
    for (const id of Object.values(g.taps)) this.rootRefs.set(id, (this.rootRefs.get(id) ?? 0) + 1);
  }

  private add(n: Node): void {
    this.store.set(n.id, n);
    this.order.push(n.id);
    this.users.set(n.id, new Set());
    for (const i of n.inputs) this.users.get(i)?.add(n.id);
  }

  override node(id: NodeId): Node {
    const n = this.store.get(id);
    if (!n) throw new Error(`no node %${id}`);
    return n;
  }

  override op(op: string, inputs: readonly NodeId[], attrs: Attrs = {}, opts: NodeOpts = {}): NodeId {
    const id = super.op(op, inputs, attrs, { scope: opts.scope ?? this.defaults.scope, loc: opts.loc ?? this.defaults.loc });
    this.add(super.node(id));
    this.created.push(id);
    return id;
  }

  uses(id: NodeId): number {
    let k = this.rootRefs.get(id) ?? 0;
    for (const u of this.users.get(id) ?? []) for (const i of this.node(u).inputs) if (i === id) k++;
    return k;
  }

  /** Redirect every use of `old` to `nu` (except in nodes listed in `skip`), then drop what became dead. */
  replaceUses(old: NodeId, nu: NodeId, skip: ReadonlySet<NodeId>): void {
    const us = this.users.get(old)!;
    const nuUsers = this.users.get(nu)!;
    for (const u of [...us]) {
      if (skip.has(u)) continue;
      const n = this.node(u);
      this.store.set(u, { ...n, inputs: n.inputs.map((i) => (i === old ? nu : i)) });
      us.delete(u);
      nuUsers.add(u);
    }
    const r = this.rootRefs.get(old);
    if (r) {
      this.rootRefs.delete(old);
      this.rootRefs.set(nu, (this.rootRefs.get(nu) ?? 0) + r);
      this.outputs = this.outputs.map((o) => (o.node === old ? { ...o, node: nu } : o));
      for (const [s, id] of Object.entries(this.taps)) if (id === old) this.taps[s] = nu;
    }
    this.killIfDead(old);
  }

  killIfDead(id: NodeId): void {
    const stack = [id];
    while (stack.length) {
      const x = stack.pop()!;
      if (this.dead.has(x) || this.uses(x) > 0) continue;
      const n = this.node(x);
      if (getOp(n.op).source) continue;
      this.dead.add(x);
      for (const i of new Set(n.inputs)) {
        this.users.get(i)?.delete(x);
        stack.push(i);
      }
    }
  }

  /** The rewritten graph: live nodes in a topological order that keeps the original order where it can. */
  result(): Graph {
    const out: Node[] = [];
    const state = new Map<NodeId, number>(); // 1 = on stack, 2 = emitted
    for (const root of this.order) {
      if (this.dead.has(root) || state.get(root) === 2) continue;
      const stack: [NodeId, number][] = [[root, 0]];
      state.set(root, 1);
      while (stack.length) {
        const top = stack[stack.length - 1];
        const n = this.node(top[0]);
        if (top[1] < n.inputs.length) {
          const i = n.inputs[top[1]++];
          const s = state.get(i);
          if (s === 1) throw new RewriteError(`the rewrite created a cycle through %${i}`);
          if (s !== 2) {
            state.set(i, 1);
            stack.push([i, 0]);
          }
        } else {
          stack.pop();
          state.set(n.id, 2);
          out.push(n);
        }
      }
    }
    const g: Graph = { ...this.g, nodes: out, outputs: this.outputs, taps: this.taps, nextId: this.nextId };
    return freeze(g, true);
  }
}

export interface RewriteOptions {
  /** Upper bound on sweeps over the graph (default 20): a rule set that keeps firing is an error. */
  readonly maxIterations?: number;
}

/** Apply `rules` to a fixed point. Returns `g` itself when nothing fired. */
export function applyRules(g: Graph, rules: readonly Rule[], ctx?: Pick<PassContext, 'record'>, opts: RewriteOptions = {}): Graph {
  const byOp = new Map<string, Rule[]>();
  const anyOp: Rule[] = [];
  for (const r of rules) {
    const ops = rootOps(r.pattern);
    if (!ops) anyOp.push(r);
    else for (const o of ops) byOp.set(o, [...(byOp.get(o) ?? []), r]);
  }
  const rb = new RewriteBuilder(g);
  const maxIt = opts.maxIterations ?? 20;
  let total = 0;
  for (let it = 0; ; it++) {
    let changed = false;
    for (let idx = 0; idx < rb.order.length; idx++) {
      const id = rb.order[idx];
      if (rb.dead.has(id)) continue;
      const n = rb.node(id);
      const cands = byOp.get(n.op);
      if (!cands && !anyOp.length) continue;
      for (const r of cands ? (anyOp.length ? [...cands, ...anyOp] : cands) : anyOp) {
        if (rb.dead.has(id)) break;
        const mt = matchAt(rb, r.pattern, id, r.when ? (mm) => r.when!(mm.nodes, mm) : undefined);
        if (!mt) continue;
        rb.created = [];
        rb.defaults = { scope: n.scope, loc: n.loc };
        let nu: NodeId;
        try {
          nu = r.replace(mt.nodes, rb, mt);
        } catch (e) {
          throw new RewriteError(`rule '${r.name}' failed at %${id} (${n.op}, scope '${n.scope}'): ${(e as Error).message}`, r.name);
        } finally {
          rb.defaults = {};
        }
        if (nu === id) {
          for (const c of rb.created) rb.killIfDead(c);
          continue;
        }
        if (!rb.store.has(nu) || rb.dead.has(nu)) throw new RewriteError(`rule '${r.name}' returned %${nu}, which is not a live node`, r.name);
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
