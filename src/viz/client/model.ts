/**
 * The page's model of one pipeline step: nodes (with the nodes the step removed kept as ghosts), the scope
 * hierarchy as nested groups, and every edge filed under the lowest group that holds both ends — so laying
 * out an expanded group needs only its own children and its own edges. Pure (no DOM): unit-tested in Node.
 */
import type { VizData, VizNode } from '../format';

export interface Group {
  /** The scope path (`model.layers.3.self_attn`); '' for the root. */
  readonly id: string;
  readonly label: string;
  readonly parent: Group | null;
  readonly depth: number;
  /** Child groups in order of first appearance. */
  readonly groups: Group[];
  /** Nodes whose scope is exactly this group, in topological order. */
  readonly nodes: number[];
  /** Edges whose lowest common group is this one, between this group's items. */
  readonly edges: ItemEdge[];
  /**
   * Edges that cross this group's border, as (port → item) for edges coming in and (item → port) for edges going
   * out; port `i:<source id>` sits at the top of the group, `o:<source id>` at the bottom. The layout routes
   * them inside the group, so an edge from outside reaches a node without crossing its siblings.
   */
  readonly ports: PortEdge[];
  /** Number of nodes in the subtree. */
  size: number;
  /** Position (in the step's order) of the subtree's first node. */
  first: number;
  /** Created / removed nodes in the subtree (pipeline diff). */
  created: number;
  removed: number;
}

/** An item of a group's layout: a child group or a node directly in it. */
export type ItemKey = string;
export const groupKey = (id: string): ItemKey => `g:${id}`;
export const nodeKey = (id: number): ItemKey => `n:${id}`;

export interface ItemEdge {
  readonly from: number;
  readonly to: number;
  readonly fromItem: ItemKey;
  readonly toItem: ItemKey;
}

export interface PortEdge {
  readonly from: ItemKey;
  readonly to: ItemKey;
}
export const inPort = (src: number): ItemKey => `i:${src}`;
export const outPort = (src: number): ItemKey => `o:${src}`;

export interface StepView {
  readonly index: number;
  readonly name: string;
  readonly nodes: ReadonlyMap<number, VizNode>;
  /** Nodes the step removed (from the previous step), shown as ghosts. */
  readonly ghosts: ReadonlySet<number>;
  /** Nodes the step created (new ids since the previous step). */
  readonly created: ReadonlySet<number>;
  /** Node → the rule of the rewrite trace that created it. */
  readonly createdBy: ReadonlyMap<number, string>;
  readonly order: readonly number[];
  /** Index of each node in `order`. */
  readonly position: ReadonlyMap<number, number>;
  readonly outputs: readonly { readonly name: string; readonly node: number }[];
  readonly root: Group;
  readonly groups: ReadonlyMap<string, Group>;
  readonly groupOf: ReadonlyMap<number, Group>;
  /** Consumers of each node in this view. */
  readonly users: ReadonlyMap<number, number[]>;
  readonly hidden: ReadonlySet<number>;
}

/** The node tables of every step, replayed from the deltas. */
export function replaySteps(data: VizData): Map<number, VizNode>[] {
  const maps: Map<number, VizNode>[] = [];
  let cur = new Map<number, VizNode>();
  for (const st of data.steps) {
    const next = new Map(cur);
    for (const id of st.remove) next.delete(id);
    for (const n of st.upsert) next.set(n.id, n);
    maps.push(next);
    cur = next;
  }
  return maps;
}

export function scopeLabel(id: string): string {
  const parts = id.split('.');
  const last = parts[parts.length - 1];
  // `model.layers.3` reads as `layers.3`, not `3`.
  if (/^\d+$/.test(last) && parts.length > 1) return `${parts[parts.length - 2]}.${last}`;
  return last;
}

/** True for nodes drawn only when constants are shown: no inputs and not data from outside (constants, iota). */
export function isConstantLike(n: VizNode, data: VizData): boolean {
  return n.inputs.length === 0 && !data.ops[n.op]?.source;
}

export function buildStepView(data: VizData, tables: Map<number, VizNode>[], index: number, opts: { showConstants: boolean }): StepView {
  const st = data.steps[index];
  const table = tables[index];
  const prev = index > 0 ? tables[index - 1] : undefined;
  const nodes = new Map(table);
  const ghosts = new Set<number>();
  const created = new Set<number>();
  const createdBy = new Map<number, string>();
  if (prev) {
    for (const id of st.remove) {
      const g = prev.get(id);
      if (g) {
        nodes.set(id, g);
        ghosts.add(id);
      }
    }
    for (const n of st.upsert) if (!prev.has(n.id)) created.add(n.id);
    for (const t of st.trace ?? []) for (const id of t.created) if (table.has(id)) createdBy.set(id, t.rule);
  }
  // Order: this step's order, with each ghost placed right after its last input still in view.
  const order = [...st.order];
  if (ghosts.size) {
    const prevOrder = data.steps[index - 1].order;
    const pos = new Map(order.map((id, i) => [id, i]));
    const extra: { id: number; at: number; k: number }[] = [];
    prevOrder.forEach((id, k) => {
      if (!ghosts.has(id)) return;
      const at = Math.max(-1, ...nodes.get(id)!.inputs.map((i) => pos.get(i) ?? -1));
      extra.push({ id, at, k });
    });
    extra.sort((a, b) => a.at - b.at || a.k - b.k);
    const merged: number[] = [];
    let e = 0;
    for (let i = -1; i < order.length; i++) {
      if (i >= 0) merged.push(order[i]);
      while (e < extra.length && extra[e].at === i) merged.push(extra[e++].id);
    }
    order.length = 0;
    order.push(...merged);
  }
  const position = new Map(order.map((id, i) => [id, i]));
  const hidden = new Set<number>();
  if (!opts.showConstants) for (const id of order) if (isConstantLike(nodes.get(id)!, data)) hidden.add(id);

  const root: Group = { id: '', label: data.title, parent: null, depth: 0, groups: [], nodes: [], edges: [], ports: [], size: 0, first: -1, created: 0, removed: 0 };
  const groups = new Map<string, Group>([['', root]]);
  const groupOf = new Map<number, Group>();
  const ensure = (scope: string): Group => {
    const have = groups.get(scope);
    if (have) return have;
    const cut = scope.lastIndexOf('.');
    const parent = ensure(cut < 0 ? '' : scope.slice(0, cut));
    const g: Group = { id: scope, label: scopeLabel(scope), parent, depth: parent.depth + 1, groups: [], nodes: [], edges: [], ports: [], size: 0, first: -1, created: 0, removed: 0 };
    parent.groups.push(g);
    groups.set(scope, g);
    return g;
  };
  for (const id of order) {
    if (hidden.has(id)) continue;
    const n = nodes.get(id)!;
    const g = ensure(data.scopes[n.scope] ?? '');
    g.nodes.push(id);
    groupOf.set(id, g);
    for (let a: Group | null = g; a; a = a.parent) {
      if (a.size++ === 0) a.first = position.get(id)!;
      if (created.has(id)) a.created++;
      if (ghosts.has(id)) a.removed++;
    }
  }
  const users = new Map<number, number[]>();
  for (const id of order) {
    if (hidden.has(id)) continue;
    const n = nodes.get(id)!;
    for (const u of n.inputs) {
      if (!nodes.has(u)) continue;
      let list = users.get(u);
      if (!list) users.set(u, (list = []));
      list.push(id);
      if (hidden.has(u)) continue;
      fileEdge(groupOf.get(u)!, groupOf.get(id)!, u, id);
    }
  }
  return { index, name: st.name, nodes, ghosts, created, createdBy, order, position, outputs: st.outputs, root, groups, groupOf, users, hidden };
}

function chain(g: Group): Group[] {
  const c: Group[] = [];
  for (let a: Group | null = g; a; a = a.parent) c.push(a);
  return c.reverse();
}

/** File edge u→v under the lowest group containing both, between that group's items. */
function fileEdge(gu: Group, gv: Group, u: number, v: number): void {
  const cu = chain(gu);
  const cv = chain(gv);
  let k = 0;
  while (k + 1 < cu.length && k + 1 < cv.length && cu[k + 1] === cv[k + 1]) k++;
  const lca = cu[k];
  const fromItem = gu === lca ? nodeKey(u) : groupKey(cu[k + 1].id);
  const toItem = gv === lca ? nodeKey(v) : groupKey(cv[k + 1].id);
  if (fromItem === toItem) return;
  lca.edges.push({ from: u, to: v, fromItem, toItem });
  // Inside each group between the LCA and an end: a route to/from that group's port for u.
  for (let j = k + 1; j < cu.length; j++) {
    const item = j + 1 < cu.length ? groupKey(cu[j + 1].id) : nodeKey(u);
    addPort(cu[j], item, outPort(u));
  }
  for (let j = k + 1; j < cv.length; j++) {
    const item = j + 1 < cv.length ? groupKey(cv[j + 1].id) : nodeKey(v);
    addPort(cv[j], inPort(u), item);
  }
}

const portSeen = new WeakMap<Group, Set<string>>();
function addPort(g: Group, from: ItemKey, to: ItemKey): void {
  let seen = portSeen.get(g);
  if (!seen) portSeen.set(g, (seen = new Set()));
  const key = `${from}>${to}`;
  if (seen.has(key)) return;
  seen.add(key);
  g.ports.push({ from, to });
}

/** The groups from the root down to `g` (inclusive). */
export function groupChain(g: Group): Group[] {
  return chain(g);
}

/** Ancestors of a group from the root down (excluding the group itself). */
export function ancestors(g: Group): Group[] {
  const c = chain(g);
  c.pop();
  return c;
}

/** Groups expanded when a graph first opens: the scope tree down to repeated blocks (`layers.0`, `layers.1`, …),
 * which stay collapsed, and nothing that would put more than `budget` items on screen. */
export function defaultExpanded(view: StepView, budget = 400): Set<string> {
  const out = new Set<string>(['']);
  let items = view.root.groups.length + view.root.nodes.length;
  const queue = [...view.root.groups];
  while (queue.length) {
    const g = queue.shift()!;
    if (/^\d+$/.test(g.id.slice(g.id.lastIndexOf('.') + 1))) continue;
    const more = g.groups.length + g.nodes.length - 1;
    if (items + more > budget) continue;
    items += more;
    out.add(g.id);
    queue.push(...g.groups);
  }
  return out;
}

/** The visible item that stands for a node: the node itself, or its outermost collapsed ancestor. */
export function representative(view: StepView, id: number, expanded: ReadonlySet<string>): ItemKey {
  const g = view.groupOf.get(id);
  if (!g) return nodeKey(id);
  for (const a of chain(g)) if (!expanded.has(a.id)) return groupKey(a.id);
  return nodeKey(id);
}
