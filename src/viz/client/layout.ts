/**
 * Layout of the expanded part only. Each expanded group is laid out on its own by dagre (top to bottom) over
 * its direct items — child groups (a box when collapsed, their own laid-out frame when expanded) and the nodes
 * directly in it — with the edges filed under it. Results are cached per group; expanding or collapsing a group
 * invalidates that group and its ancestors only, so opening one layer of a 46-layer model lays out one layer.
 * Pure (no DOM): unit-tested in Node.
 */
import * as dagre from '@dagrejs/dagre';
import type { VizData, VizNode } from '../format';
import { Group, ItemKey, StepView, groupKey, nodeKey } from './model';

export interface Box {
  /** Centre, relative to the enclosing group's content origin (or absolute, in PlacedItem). */
  x: number;
  y: number;
  w: number;
  h: number;
}

export interface GroupLayout {
  readonly w: number;
  readonly h: number;
  readonly items: ReadonlyMap<ItemKey, Box>;
  /** dagre's route per item edge `from→to` (item keys), relative to the content origin. */
  readonly routes: ReadonlyMap<string, readonly { x: number; y: number }[]>;
  /** Sources (items or ports) with more than FANOUT_LIMIT targets here: their edges are not routed (drawn as stubs). */
  readonly detached: ReadonlySet<ItemKey>;
}

/**
 * A source feeding more items than this in one group (e.g. `positions` feeding all 46 layers) is not routed:
 * dozens of long parallel edges would dominate the layout and its cost. Its edges are drawn as labelled stubs.
 */
export const FANOUT_LIMIT = 6;

export const CHAR_W = 6.6; // 11px monospace
export const NODE_H = 36;
export const GROUP_H = 42;
export const HEADER = 26;
export const PAD = 14;

export function nodeLines(n: VizNode): [string, string] {
  const sub = n.name !== undefined ? shortName(n.name) : n.type;
  return [n.op, clip(sub, 34)];
}

export function groupLines(g: Group): [string, string] {
  return [clip(g.label, 34), `${g.size} node${g.size === 1 ? '' : 's'}${g.groups.length ? ` · ${g.groups.length} group${g.groups.length === 1 ? '' : 's'}` : ''}`];
}

function shortName(name: string): string {
  const p = name.split('.');
  return p.length > 2 ? p.slice(-2).join('.') : name;
}

export function clip(s: string, n: number): string {
  return s.length > n ? s.slice(0, n - 1) + '…' : s;
}

const width = (lines: readonly string[]) => Math.max(64, Math.ceil(Math.max(...lines.map((l) => l.length)) * CHAR_W) + 22);

const TOP = '^top';
const BOTTOM = '^bottom';

export function routeKey(from: ItemKey, to: ItemKey): string {
  return `${from}>${to}`;
}

export class LayoutEngine {
  private readonly cache = new Map<string, GroupLayout>();
  /** Milliseconds spent in dagre since the engine was made (for the benchmark). */
  layoutMs = 0;
  groupsLaidOut = 0;

  constructor(
    readonly data: VizData,
    readonly view: StepView,
  ) {}

  /** Forget the layouts that depend on a group's expansion: the group and its ancestors. */
  invalidate(groupId: string): void {
    for (let g = this.view.groups.get(groupId) ?? null; g; g = g.parent) this.cache.delete(g.id);
  }

  itemSize(key: ItemKey, expanded: ReadonlySet<string>): { w: number; h: number } {
    if (key.startsWith('n:')) {
      const n = this.view.nodes.get(Number(key.slice(2)))!;
      return { w: width(nodeLines(n)), h: NODE_H };
    }
    const g = this.view.groups.get(key.slice(2))!;
    if (expanded.has(g.id)) {
      const l = this.layout(g, expanded);
      return { w: l.w, h: l.h };
    }
    return { w: width(groupLines(g)) + 18, h: GROUP_H };
  }

  /**
   * Lay out every expanded group (children first, so each call runs dagre once), yielding to the browser
   * every `sliceMs`: "Expand all" on 27B lays out ~300 groups, seconds of work that would otherwise freeze
   * the page. Returns false when `cancelled()` turned true on the way (the caller moved on).
   */
  async prepare(expanded: ReadonlySet<string>, o: { onProgress?: (done: number, total: number) => void; cancelled?: () => boolean; sliceMs?: number } = {}): Promise<boolean> {
    const order: Group[] = [];
    const visit = (g: Group) => {
      for (const c of g.groups) if (expanded.has(c.id)) visit(c);
      if (!this.cache.has(g.id)) order.push(g);
    };
    visit(this.view.root);
    const slice = o.sliceMs ?? 40;
    let t = now();
    for (let i = 0; i < order.length; i++) {
      if (o.cancelled?.()) return false;
      this.layout(order[i], expanded);
      if (now() - t > slice && i + 1 < order.length) {
        o.onProgress?.(i + 1, order.length);
        await new Promise((r) => setTimeout(r, 0));
        t = now();
      }
    }
    return !o.cancelled?.();
  }

  layout(group: Group, expanded: ReadonlySet<string>): GroupLayout {
    const have = this.cache.get(group.id);
    if (have) return have;
    // Items in the order of their first node keeps dagre's initial order close to the source order.
    const keyed: [number, ItemKey][] = [...group.groups.map((c): [number, ItemKey] => [c.first, groupKey(c.id)]), ...group.nodes.map((id): [number, ItemKey] => [this.view.position.get(id)!, nodeKey(id)])];
    keyed.sort((a, b) => a[0] - b[0]);
    const sizes = new Map<ItemKey, { w: number; h: number }>();
    for (const [, k] of keyed) sizes.set(k, this.itemSize(k, expanded));
    const t0 = now();
    const g = new dagre.graphlib.Graph({ multigraph: false });
    g.setGraph({ rankdir: 'TB', nodesep: 18, ranksep: 30, edgesep: 10, marginx: 0, marginy: 0 });
    g.setDefaultEdgeLabel(() => ({}));
    for (const [k, s] of sizes) g.setNode(k, { width: s.w, height: s.h });
    const targets = new Map<ItemKey, Set<ItemKey>>();
    const count = (from: ItemKey, to: ItemKey) => {
      let t = targets.get(from);
      if (!t) targets.set(from, (t = new Set()));
      t.add(to);
    };
    for (const e of group.edges) count(e.fromItem, e.toItem);
    for (const e of group.ports) count(e.from, e.to);
    const detached = new Set<ItemKey>();
    for (const [k, t] of targets) if (t.size > FANOUT_LIMIT) detached.add(k);
    for (const e of group.edges) if (!detached.has(e.fromItem) && !g.hasEdge(e.fromItem, e.toItem)) g.setEdge(e.fromItem, e.toItem, {});
    // Ports for edges that cross the border, pulled to the top (in) and bottom (out) by heavy edges to two
    // helper nodes, so dagre routes those edges around this group's items.
    const ports = new Set<ItemKey>();
    for (const e of group.ports) {
      if (detached.has(e.from)) continue;
      for (const k of [e.from, e.to]) {
        if ((k.startsWith('i:') || k.startsWith('o:')) && !ports.has(k)) {
          ports.add(k);
          g.setNode(k, { width: 2, height: 2 });
          if (k.startsWith('i:')) g.setEdge(TOP, k, { weight: 50 });
          else g.setEdge(k, BOTTOM, { weight: 50 });
        }
      }
      if (!g.hasEdge(e.from, e.to)) g.setEdge(e.from, e.to, {});
    }
    if (g.hasNode(TOP)) g.setNode(TOP, { width: 0, height: 0 });
    if (g.hasNode(BOTTOM)) g.setNode(BOTTOM, { width: 0, height: 0 });
    dagre.layout(g);
    this.layoutMs += now() - t0;
    this.groupsLaidOut++;
    let minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
    const items = new Map<ItemKey, Box>();
    for (const k of sizes.keys()) {
      const n = g.node(k);
      const b = { x: n.x!, y: n.y!, w: n.width, h: n.height };
      items.set(k, b);
      minX = Math.min(minX, b.x - b.w / 2);
      maxX = Math.max(maxX, b.x + b.w / 2);
      minY = Math.min(minY, b.y - b.h / 2);
      maxY = Math.max(maxY, b.y + b.h / 2);
    }
    const routes = new Map<string, { x: number; y: number }[]>();
    for (const e of g.edges()) {
      if (e.v === TOP || e.w === BOTTOM) continue;
      const pts = ((g.edge(e).points ?? []) as { x: number; y: number }[]).map((p) => ({ x: p.x, y: p.y }));
      routes.set(routeKey(e.v, e.w), pts);
      for (const p of pts) {
        minX = Math.min(minX, p.x);
        maxX = Math.max(maxX, p.x);
        // Port routes may start a little above the first item / end below the last one.
        minY = Math.min(minY, p.y);
        maxY = Math.max(maxY, p.y);
      }
    }
    if (!items.size) minX = minY = maxX = maxY = 0;
    for (const b of items.values()) {
      b.x -= minX;
      b.y -= minY;
    }
    for (const r of routes.values()) {
      for (const p of r) {
        p.x -= minX;
        p.y -= minY;
      }
    }
    const titleW = group.label.length * CHAR_W + 80;
    const l: GroupLayout = { w: Math.max(maxX - minX, titleW) + 2 * PAD, h: maxY - minY + HEADER + 2 * PAD, items, routes, detached };
    // Re-centre the content when the title is wider than it.
    const shift = (l.w - 2 * PAD - (maxX - minX)) / 2;
    if (shift > 0) {
      for (const b of items.values()) b.x += shift;
      for (const r of routes.values()) for (const p of r) p.x += shift;
    }
    this.cache.set(group.id, l);
    return l;
  }
}

/** An item placed in page coordinates. */
export interface PlacedItem extends Box {
  readonly key: ItemKey;
  readonly group?: Group;
  readonly node?: number;
  readonly expanded: boolean;
  readonly depth: number;
}

export interface Scene {
  readonly items: PlacedItem[];
  readonly byKey: Map<ItemKey, PlacedItem>;
  /** Content origin of every expanded group, in page coordinates. */
  readonly origins: Map<string, { x: number; y: number }>;
  readonly w: number;
  readonly h: number;
}

/** Place the root's layout and, recursively, every expanded group's content in page coordinates. */
export function placeScene(engine: LayoutEngine, expanded: ReadonlySet<string>): Scene {
  const root = engine.view.root;
  const rl = engine.layout(root, expanded);
  const items: PlacedItem[] = [];
  const byKey = new Map<ItemKey, PlacedItem>();
  const origins = new Map<string, { x: number; y: number }>();
  const visit = (g: Group, ox: number, oy: number, depth: number) => {
    origins.set(g.id, { x: ox, y: oy });
    const l = engine.layout(g, expanded);
    for (const [k, b] of l.items) {
      const isGroup = k.startsWith('g:');
      const child = isGroup ? engine.view.groups.get(k.slice(2))! : undefined;
      const exp = !!child && expanded.has(child.id);
      const p: PlacedItem = { key: k, x: ox + b.x, y: oy + b.y, w: b.w, h: b.h, depth, expanded: exp, ...(child ? { group: child } : { node: Number(k.slice(2)) }) };
      items.push(p);
      byKey.set(k, p);
      if (child && exp) visit(child, p.x - b.w / 2 + PAD, p.y - b.h / 2 + HEADER + PAD, depth + 1);
    }
  };
  visit(root, PAD, PAD, 0);
  return { items, byKey, origins, w: rl.w, h: rl.h - HEADER };
}

const now = () => (typeof performance !== 'undefined' ? performance.now() : Date.now());
