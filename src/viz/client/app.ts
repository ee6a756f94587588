/**
 * The visualizer page: toolbar (search, colour, export), the pipeline steps, the graph (SVG, pan and zoom),
 * the side panel and the legend. State lives here; model.ts and layout.ts compute, this file draws.
 */
import type { VizData, VizNode } from '../format';
import { fmtExact, fmtMetric, fmtSI, fmtSeconds } from '../fmt';
import { Child, clear, el, svg } from './dom';
import { Group, ItemKey, StepView, ancestors, groupChain, inPort, outPort, buildStepView, defaultExpanded, groupKey, nodeKey, replaySteps, representative } from './model';
import { GROUP_H, HEADER, LayoutEngine, PAD, PlacedItem, Scene, clip, groupLines, nodeLines, placeScene, routeKey } from './layout';
import { GRAPH_CSS } from './style';
import { exportPng, exportSvg } from './export';

type Selection = { kind: 'node'; id: number } | { kind: 'group'; id: string } | null;

export interface Timings {
  parse?: number;
  model: number;
  layout: number;
  render: number;
}

interface SavedState {
  step: number;
  expanded: string[];
  selected: Selection;
  colorBy: string;
  showConstants: boolean;
  search: string;
  t: { x: number; y: number; k: number };
}

const RAMP = ['#ffffcc', '#fed976', '#fd8d3c', '#e31a1c', '#800026'];

export class App {
  readonly tables: Map<number, VizNode>[];
  step = 0;
  view!: StepView;
  engine!: LayoutEngine;
  expanded = new Set<string>();
  selected: Selection = null;
  colorBy = 'op';
  showConstants = false;
  search = '';
  matches = new Set<number>();
  scene!: Scene;
  t = { x: 0, y: 0, k: 1 };
  readonly timings: Timings = { model: 0, layout: 0, render: 0 };
  private aggregates = new Map<string, number[]>();
  private opColors = new Map<string, string>();

  // DOM
  readonly root: HTMLElement;
  readonly svgEl: SVGSVGElement;
  readonly viewport: SVGGElement;
  readonly panel: HTMLElement;
  readonly legend: HTMLElement;
  readonly stepsBar: HTMLElement;
  readonly searchBox: HTMLInputElement;
  readonly colorSelect: HTMLSelectElement;
  readonly banner: HTMLElement;
  readonly stats: HTMLElement;
  readonly progress: HTMLElement;

  constructor(
    readonly data: VizData,
    mount: HTMLElement,
  ) {
    this.tables = replaySteps(data);
    Object.keys(data.ops).forEach((op, i) => this.opColors.set(op, `hsl(${(i * 137.508) % 360}, 62%, 84%)`));

    this.searchBox = el('input', { type: 'search', id: 'search', placeholder: 'Search name, op, scope, %id  ( / )', 'aria-label': 'search nodes' });
    this.colorSelect = el('select', { id: 'color-by', 'aria-label': 'colour by' }, el('option', { value: 'op' }, 'colour: op'), el('option', { value: 'none' }, 'colour: none'));
    data.metrics.forEach((m, i) => this.colorSelect.appendChild(el('option', { value: `m${i}` }, `colour: ${m.label}`)));
    const constants = el('input', { type: 'checkbox', id: 'show-constants' });
    const info = Object.entries(data.info).map(([k, v]) => `${k}: ${v}`).join(' · ');
    const header = el(
      'header',
      {},
      el('h1', {}, data.title),
      el('span', { class: 'info', title: info }, info),
      el('span', { class: 'spacer' }),
      this.searchBox,
      this.colorSelect,
      el('label', { title: 'show constant and iota nodes' }, constants, ' constants'),
      el('button', { id: 'fit', title: 'fit the graph to the window' }, 'Fit'),
      el('button', { id: 'expand-all', title: 'expand every group' }, 'Expand all'),
      el('button', { id: 'collapse-all', title: 'back to the overview' }, 'Collapse'),
      el('button', { id: 'export-svg', title: 'download the current view as SVG' }, 'SVG'),
      el('button', { id: 'export-png', title: 'download the current view as PNG' }, 'PNG'),
    );
    this.stepsBar = el('div', { id: 'steps' });
    this.svgEl = svg('svg', { id: 'graph', class: 'lv-graph', role: 'img', 'aria-label': 'graph' });
    this.viewport = svg('g', { class: 'viewport' });
    this.svgEl.appendChild(svg('defs', {}, svg('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' }, svg('path', { d: 'M0,0 L10,5 L0,10 z', fill: '#8791a5' }))));
    this.svgEl.appendChild(this.viewport);
    this.legend = el('div', { id: 'legend' });
    this.banner = el('div', { id: 'banner', role: 'status' });
    this.stats = el('div', { id: 'stats' });
    this.progress = el('div', { id: 'progress', role: 'status', style: 'display:none' });
    this.panel = el('aside', { id: 'panel' });
    this.root = el('div', { id: 'app' }, header, this.stepsBar, el('div', { id: 'main' }, el('div', { id: 'canvas' }, this.svgEl, this.legend, this.banner, this.progress, this.stats), this.panel));
    clear(mount);
    mount.appendChild(this.root);

    this.searchBox.addEventListener('input', () => this.setSearch(this.searchBox.value));
    this.searchBox.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') this.nextMatch();
      if (e.key === 'Escape') {
        this.searchBox.value = '';
        this.setSearch('');
      }
    });
    this.colorSelect.addEventListener('change', () => {
      this.colorBy = this.colorSelect.value;
      this.render();
    });
    constants.addEventListener('change', () => {
      this.showConstants = constants.checked;
      this.setStep(this.step);
    });
    header.querySelector('#fit')!.addEventListener('click', () => this.fit());
    header.querySelector('#expand-all')!.addEventListener('click', () => void this.expandMany([...this.view.groups.keys()], () => this.initialView()));
    header.querySelector('#collapse-all')!.addEventListener('click', () => {
      this.layoutRun++;
      this.showProgress('');
      this.expanded = defaultExpanded(this.view);
      this.engine = new LayoutEngine(this.data, this.view);
      this.render();
      this.initialView();
    });
    header.querySelector('#export-svg')!.addEventListener('click', () => exportSvg(this, GRAPH_CSS));
    header.querySelector('#export-png')!.addEventListener('click', () => void exportPng(this, GRAPH_CSS));
    document.addEventListener('keydown', (e) => {
      if (e.key === '/' && document.activeElement !== this.searchBox) {
        e.preventDefault();
        this.searchBox.focus();
      } else if (e.key === 'Escape' && document.activeElement !== this.searchBox) {
        this.select(null);
      }
    });
    this.installPanZoom();
    window.addEventListener('resize', () => this.applyTransform());
  }

  /** First render, optionally restoring a saved state (after a live reload). */
  start(saved?: SavedState): void {
    const st = saved && saved.step < this.data.steps.length ? saved.step : 0;
    if (saved) {
      this.colorBy = this.colorSelect.querySelector(`option[value="${CSS.escape(saved.colorBy)}"]`) ? saved.colorBy : 'op';
      this.colorSelect.value = this.colorBy;
      this.showConstants = saved.showConstants;
      (this.root.querySelector('#show-constants') as HTMLInputElement).checked = saved.showConstants;
    }
    // The selection is restored before the first render, so its outline is drawn (setStep drops it if it is gone).
    if (saved?.selected) this.selected = saved.selected;
    this.setStep(st, saved ? new Set(saved.expanded) : undefined);
    if (saved) {
      if (saved.search) {
        this.searchBox.value = saved.search;
        this.setSearch(saved.search);
      }
      this.t = saved.t;
      this.applyTransform();
    } else {
      this.initialView();
    }
  }

  saveState(): SavedState {
    return { step: this.step, expanded: [...this.expanded], selected: this.selected, colorBy: this.colorBy, showConstants: this.showConstants, search: this.search, t: this.t };
  }

  setStep(index: number, expanded?: Set<string>): void {
    const t0 = performance.now();
    this.layoutRun++;
    this.showProgress('');
    this.root.removeAttribute('data-busy');
    this.step = index;
    this.view = buildStepView(this.data, this.tables, index, { showConstants: this.showConstants });
    this.timings.model = performance.now() - t0;
    this.engine = new LayoutEngine(this.data, this.view);
    this.aggregates.clear();
    if (expanded) this.expanded = new Set([...expanded].filter((g) => this.view.groups.has(g)).concat(''));
    else if (!this.expanded.size) this.expanded = defaultExpanded(this.view);
    else this.expanded = new Set([...this.expanded].filter((g) => this.view.groups.has(g)).concat(''));
    if (this.selected?.kind === 'node' && !this.view.nodes.has(this.selected.id)) this.selected = null;
    if (this.selected?.kind === 'group' && !this.view.groups.has(this.selected.id)) this.selected = null;
    this.computeMatches();
    this.renderSteps();
    this.render();
    this.renderPanel();
  }

  // ---------------------------------------------------------------- drawing

  render(): void {
    const t0 = performance.now();
    this.scene = placeScene(this.engine, this.expanded);
    const t1 = performance.now();
    this.timings.layout = t1 - t0;
    clear(this.viewport);
    const frames = svg('g', { class: 'frames' });
    const edges = svg('g', { class: 'edges' });
    const items = svg('g', { class: 'items' });
    const scale = this.metricScale();
    const sel = this.selected;
    const selKey = sel ? (sel.kind === 'node' ? representative(this.view, sel.id, this.expanded) : groupKey(sel.id)) : undefined;
    const frameList = this.scene.items.filter((p) => p.expanded).sort((a, b) => a.depth - b.depth);
    for (const p of frameList) frames.appendChild(this.drawFrame(p, selKey));
    for (const p of this.scene.items) if (!p.expanded) items.appendChild(p.group ? this.drawGroup(p, scale, selKey) : this.drawNode(p, scale, selKey));
    this.drawEdges(edges, selKey);
    this.viewport.append(frames, edges, items);
    this.renderLegend(scale);
    this.applyTransform();
    this.timings.render = performance.now() - t1;
    const shown = this.scene.items.filter((p) => !p.expanded).length;
    this.stats.textContent = `${this.view.order.length - this.view.ghosts.size} nodes · ${shown} items shown · layout ${this.timings.layout.toFixed(0)} ms`;
    // The side panel's Expand/Collapse follows the group however it was opened or closed (+, double-click, Expand all).
    const toggle = this.panel.querySelector('#panel-toggle');
    if (toggle && sel?.kind === 'group') toggle.textContent = this.expanded.has(sel.id) ? 'Collapse' : 'Expand';
  }

  private fillFor(p: PlacedItem, scale: MetricScale | undefined): { fill?: string; dark: boolean } {
    if (this.colorBy === 'op' && p.node !== undefined) return { fill: this.opColors.get(this.view.nodes.get(p.node)!.op), dark: false };
    if (!scale) return { dark: false };
    const v = p.node !== undefined ? this.view.nodes.get(p.node)!.m?.[scale.index] ?? null : this.groupMetric(p.group!, scale.index);
    if (v === null || !(v > 0)) return { fill: '#f0f1f3', dark: false };
    const f = scale.max > scale.min ? (Math.log10(v) - Math.log10(scale.min)) / (Math.log10(scale.max) - Math.log10(scale.min)) : 1;
    return { fill: ramp(Math.min(1, Math.max(0, f))), dark: f > 0.62 };
  }

  private drawNode(p: PlacedItem, scale: MetricScale | undefined, selKey: ItemKey | undefined): SVGGElement {
    const n = this.view.nodes.get(p.node!)!;
    const [l1, l2] = nodeLines(n);
    const cls = ['node'];
    if (this.view.created.has(n.id)) cls.push('created');
    if (this.view.ghosts.has(n.id)) cls.push('ghost');
    if (this.matches.has(n.id)) cls.push('match');
    if (selKey === p.key) cls.push('selected');
    const { fill, dark } = this.fillFor(p, scale);
    if (dark) cls.push('dark');
    const g = svg(
      'g',
      { class: cls.join(' '), 'data-node': n.id, transform: `translate(${p.x - p.w / 2},${p.y - p.h / 2})` },
      svg('title', {}, `%${n.id} ${n.op}${n.name !== undefined ? ` ${n.name}` : ''} : ${n.type}${n.sharding ? ` sharded ${n.sharding.spec}` : ''}`),
      svg('rect', { width: p.w, height: p.h, rx: 5, ...(fill ? { style: `fill:${fill}` } : {}) }),
      svg('text', { class: 'l1', x: 10, y: 15 }, l1),
      svg('text', { class: 'l2', x: 10, y: 29 }, l2),
    );
    g.addEventListener('click', (e) => {
      if (this.suppressClick) return;
      e.stopPropagation();
      this.select({ kind: 'node', id: n.id });
    });
    return g;
  }

  private drawGroup(p: PlacedItem, scale: MetricScale | undefined, selKey: ItemKey | undefined): SVGGElement {
    const grp = p.group!;
    const [l1, l2] = groupLines(grp);
    const cls = ['group', 'collapsed'];
    if (selKey === p.key) cls.push('selected');
    const matches = this.matchesIn(grp);
    if (matches) cls.push('match');
    if (grp.created) cls.push('created');
    const { fill, dark } = this.fillFor(p, scale);
    if (dark) cls.push('dark');
    const w = p.w - 6;
    const g = svg(
      'g',
      { class: cls.join(' '), 'data-group': grp.id, transform: `translate(${p.x - p.w / 2},${p.y - p.h / 2})` },
      svg('title', {}, `${grp.id} — ${grp.size} nodes (double-click or + to expand)`),
      svg('rect', { class: 'stack', x: 6, y: 6, width: w, height: GROUP_H - 6, rx: 6 }),
      svg('rect', { class: 'box', width: w, height: GROUP_H - 6, rx: 6, ...(fill ? { style: `fill:${fill}` } : {}) }),
      svg('text', { class: 'l1', x: 10, y: 15 }, l1),
      svg('text', { class: 'l2', x: 10, y: 29 }, l2),
    );
    const toggle = this.toggleButton(w - 20, 4, '+', `expand ${grp.id}`, () => this.expand(grp.id));
    g.appendChild(toggle);
    const badges: [string, string][] = [];
    if (grp.created) badges.push([`+${grp.created}`, '#1a7f37']);
    if (grp.removed) badges.push([`−${grp.removed}`, '#d1242f']);
    if (matches) badges.push([`${matches}`, '#bf8700']);
    // Badges sit on the box's top edge, right-aligned (like notification badges), so they never cover its text.
    let bx = w - 22;
    for (const [text, color] of badges.reverse()) {
      const bw = text.length * 6.2 + 8;
      bx -= bw + 3;
      g.appendChild(svg('g', { class: 'badge', transform: `translate(${bx},-7)` }, svg('rect', { width: bw, height: 13, rx: 6, style: `fill:${color}` }), svg('text', { x: 4, y: 10 }, text)));
    }
    g.addEventListener('click', (e) => {
      if (this.suppressClick) return;
      e.stopPropagation();
      this.select({ kind: 'group', id: grp.id });
    });
    g.addEventListener('dblclick', (e) => {
      e.stopPropagation();
      this.expand(grp.id);
    });
    return g;
  }

  private drawFrame(p: PlacedItem, selKey: ItemKey | undefined): SVGGElement {
    const grp = p.group!;
    const cls = ['frame'];
    if (selKey === p.key) cls.push('selected');
    const diff = [grp.created ? `+${grp.created}` : '', grp.removed ? `−${grp.removed}` : ''].filter(Boolean).join(' ');
    const g = svg(
      'g',
      { class: cls.join(' '), 'data-group': grp.id, transform: `translate(${p.x - p.w / 2},${p.y - p.h / 2})` },
      svg('rect', { width: p.w, height: p.h, rx: 8 }),
      svg('text', { class: 'title', x: 30, y: 17 }, clip(grp.label, 60)),
      svg('text', { class: 'meta', x: 30 + Math.min(60, grp.label.length) * 6.6 + 12, y: 17 }, `${grp.size} nodes${diff ? ` · ${diff}` : ''}`),
    );
    g.appendChild(this.toggleButton(6, 4, '−', `collapse ${grp.id}`, () => this.collapse(grp.id)));
    g.addEventListener('click', (e) => {
      if (this.suppressClick) return;
      // Only the header selects the group; clicks on the frame's body fall through to the background.
      const pt = this.toGraph(e);
      if (pt.y - (p.y - p.h / 2) > HEADER) return;
      e.stopPropagation();
      this.select({ kind: 'group', id: grp.id });
    });
    return g;
  }

  private toggleButton(x: number, y: number, sign: string, label: string, onClick: () => void): SVGGElement {
    const b = svg('g', { class: 'toggle', transform: `translate(${x},${y})`, role: 'button', 'aria-label': label }, svg('rect', { width: 16, height: 16, rx: 3 }), svg('text', { x: 4.5, y: 12.5 }, sign));
    b.addEventListener('click', (e) => {
      e.stopPropagation();
      if (!this.suppressClick) onClick();
    });
    b.addEventListener('dblclick', (e) => e.stopPropagation());
    return b;
  }

  private drawEdges(layer: SVGGElement, selKey: ItemKey | undefined): void {
    const drawn = new Set<string>();
    const stubs = new Map<string, { x: number; y: number; sources: number[] }>();
    const visit = (g: Group) => {
      if (!this.expanded.has(g.id)) return;
      for (const e of g.edges) {
        const ru = representative(this.view, e.from, this.expanded);
        const rv = representative(this.view, e.to, this.expanded);
        if (ru === rv) continue;
        const key = `${ru}>${rv}`;
        if (drawn.has(key)) continue;
        drawn.add(key);
        const a = this.scene.byKey.get(ru);
        const b = this.scene.byKey.get(rv);
        if (!a || !b) continue;
        const { pts, cut } = this.edgePoints(g, e.from, e.to, e.fromItem, e.toItem, a, b);
        const hl = !!selKey && (selKey === ru || selKey === rv);
        if (cut && !hl) {
          // A detached high-fan-out edge: a labelled stub where the route resumes (or above the target).
          const at = pts.length ? pts[0] : { x: b.x - b.w / 2 + 4, y: b.y - b.h / 2 - 2 };
          const sk = `${at.x.toFixed(0)},${at.y.toFixed(0)}`;
          const st = stubs.get(sk) ?? { x: at.x, y: at.y, sources: [] };
          if (!st.sources.includes(e.from)) st.sources.push(e.from);
          stubs.set(sk, st);
          if (pts.length < 2) continue;
        }
        const line = cut && hl ? [{ x: a.x, y: a.y + a.h / 2 }, ...pts, ...(pts.length ? [] : [{ x: b.x, y: b.y - b.h / 2 }])] : pts;
        const cls = ['edge'];
        if (hl) cls.push('hl');
        if (cut && !hl) cls.push('stubbed');
        if (this.view.ghosts.has(e.from) || this.view.ghosts.has(e.to)) cls.push('ghost');
        layer.appendChild(svg('path', { class: cls.join(' '), d: smoothPath(line), 'marker-end': 'url(#arrow)', 'data-edge': key }));
      }
      for (const c of g.groups) visit(c);
    };
    visit(this.view.root);
    for (const st of stubs.values()) {
      const names = st.sources.map((id) => {
        const n = this.view.nodes.get(id)!;
        return n.name ?? `%${id} ${n.op}`;
      });
      const t = svg('text', { class: 'stub', x: st.x + 3, y: st.y - 3 }, `${clip(names.join(', '), 40)} ↓`);
      const g = svg('g', { class: 'stub-label', 'data-stub': st.sources.join(',') }, svg('title', {}, `from ${names.join(', ')} (click to select)`), t);
      g.addEventListener('click', (ev) => {
        ev.stopPropagation();
        this.reveal(st.sources[0]);
      });
      layer.appendChild(g);
    }
  }

  /**
   * The points of edge u→v filed under group `lca`: inside each expanded group on u's side, the route from u's
   * item to the group's out-port; the route between the LCA's items; inside each expanded group on v's side,
   * the route from the group's in-port to v's item. A detached segment (high fan-out) cuts the edge: only the
   * part after the last cut is returned, with `cut` set.
   */
  private edgePoints(lca: Group, u: number, v: number, fromItem: ItemKey, toItem: ItemKey, a: PlacedItem, b: PlacedItem): { pts: { x: number; y: number }[]; cut: boolean } {
    const k = lca.depth;
    const side = (node: number): Group[] => {
      const c = groupChain(this.view.groupOf.get(node)!);
      const out: Group[] = [];
      for (let j = k + 1; j < c.length && this.expanded.has(c[j].id); j++) out.push(c[j]);
      return out;
    };
    const itemIn = (grp: Group, node: number): ItemKey => {
      const c = groupChain(this.view.groupOf.get(node)!);
      return grp.depth + 1 < c.length ? groupKey(c[grp.depth + 1].id) : nodeKey(node);
    };
    let pts: { x: number; y: number }[] = [];
    let cut = false;
    const boxOf = (g: Group) => this.scene.byKey.get(groupKey(g.id));
    const clampX = (x: number, b: PlacedItem) => Math.min(b.x + b.w / 2 - 8, Math.max(b.x - b.w / 2 + 8, x));
    /**
     * Each group's route is laid out on its own, so where the parent's route meets a group's border and where
     * the group's port sits inside need not line up. Join them with a straight vertical through the border:
     * leaving a group, the parent's route starts on its bottom border below the out-port; entering one, the
     * parent's route ends on its top border above the in-port (no jumps across the frame, no loops).
     */
    const add = (grp: Group, from: ItemKey, to: ItemKey, leaving?: Group, entering = false) => {
      const l = this.engine.layout(grp, this.expanded);
      const r = l.routes.get(routeKey(from, to));
      const o = this.scene.origins.get(grp.id);
      if (!r || !o) {
        pts = [];
        cut = true;
        return;
      }
      const seg = r.map((q) => ({ x: q.x + o.x, y: q.y + o.y }));
      const b = leaving ? boxOf(leaving) : entering ? boxOf(grp) : undefined;
      if (b && pts.length && seg.length) {
        if (leaving) seg[0] = { x: clampX(pts[pts.length - 1].x, b), y: b.y + b.h / 2 };
        else pts[pts.length - 1] = { x: clampX(seg[0].x, b), y: b.y - b.h / 2 };
      }
      pts.push(...seg);
    };
    const src = side(u).reverse();
    src.forEach((grp, i) => add(grp, itemIn(grp, u), outPort(u), src[i - 1]));
    if (!src.length && fromItem !== representative(this.view, u, this.expanded)) pts.push({ x: a.x, y: a.y + a.h / 2 });
    add(lca, fromItem, toItem, src[src.length - 1]);
    for (const grp of side(v)) add(grp, inPort(u), itemIn(grp, v), undefined, true);
    return { pts, cut };
  }

  // ---------------------------------------------------------------- metrics and legend

  private metricScale(): MetricScale | undefined {
    if (!this.colorBy.startsWith('m')) return undefined;
    const index = Number(this.colorBy.slice(1));
    let min = Infinity;
    let max = 0;
    for (const p of this.scene.items) {
      if (p.expanded) continue;
      const v = p.node !== undefined ? this.view.nodes.get(p.node)!.m?.[index] ?? null : this.groupMetric(p.group!, index);
      if (v !== null && v > 0) {
        min = Math.min(min, v);
        max = Math.max(max, v);
      }
    }
    return { index, min: Number.isFinite(min) ? min : 0, max };
  }

  /** A group's metric: the sum over its nodes, or for FLOPs/byte the ratio of the sums. */
  groupMetric(g: Group, index: number): number | null {
    let agg = this.aggregates.get(g.id);
    if (!agg) {
      this.computeAggregates();
      agg = this.aggregates.get(g.id)!;
    }
    const m = this.data.metrics[index];
    if (m.additive) return agg[index];
    if (m.key === 'intensity') {
      const f = this.data.metrics.findIndex((x) => x.key === 'flops');
      const b = this.data.metrics.findIndex((x) => x.key === 'bytes');
      return agg[b] > 0 ? agg[f] / agg[b] : null;
    }
    return null;
  }

  private computeAggregates(): void {
    const k = this.data.metrics.length;
    for (const id of this.view.groups.keys()) this.aggregates.set(id, new Array(k).fill(0));
    for (const id of this.view.order) {
      if (this.view.ghosts.has(id)) continue;
      const n = this.view.nodes.get(id)!;
      if (!n.m) continue;
      // Hidden constants still cost what they cost: file them under their own scope.
      let g: Group | null | undefined = this.view.groupOf.get(id) ?? this.view.groups.get(this.data.scopes[n.scope]) ?? this.view.root;
      for (; g; g = g.parent) {
        const a = this.aggregates.get(g.id)!;
        n.m.forEach((v, i) => (a[i] += v ?? 0));
      }
    }
  }

  private renderLegend(scale: MetricScale | undefined): void {
    clear(this.legend);
    if (this.colorBy === 'op') {
      const counts = new Map<string, number>();
      for (const p of this.scene.items) if (p.node !== undefined) counts.set(this.view.nodes.get(p.node)!.op, (counts.get(this.view.nodes.get(p.node)!.op) ?? 0) + 1);
      const ops = [...counts.entries()].sort((a, b) => b[1] - a[1]);
      this.legend.appendChild(el('div', {}, el('b', {}, 'op'), ops.length ? '' : ' (expand a group to see nodes)'));
      this.legend.appendChild(el('div', { class: 'ops' }, ...ops.map(([op, c]) => el('div', {}, el('span', { class: 'sw', style: `background:${this.opColors.get(op)}` }), `${op} ×${c}`))));
    } else if (scale) {
      const m = this.data.metrics[scale.index];
      this.legend.appendChild(el('div', {}, el('b', {}, m.label), ' (log scale over what is shown; groups show ', m.additive ? 'sums' : 'totals', ')'));
      this.legend.appendChild(el('div', { class: 'bar', style: `background:linear-gradient(to right, ${RAMP.join(', ')})` }));
      this.legend.appendChild(el('div', { class: 'ends' }, el('span', {}, fmtMetric(scale.min || null, m.unit)), el('span', {}, fmtMetric(scale.max || null, m.unit))));
      if (this.data.metricNote) this.legend.appendChild(el('div', { class: 'note' }, this.data.metricNote));
    }
    const diff = this.view.created.size || this.view.ghosts.size;
    if (diff) {
      this.legend.appendChild(
        el('div', { class: 'note' }, el('span', { class: 'sw', style: 'border:2px solid #1a7f37' }), `created by ${this.view.name} (${this.view.created.size})  `, el('span', { class: 'sw', style: 'border:2px dashed #d1242f;background:#ffebe9' }), `removed (${this.view.ghosts.size})`),
      );
    }
    this.legend.style.display = this.legend.childNodes.length ? '' : 'none';
  }

  // ---------------------------------------------------------------- pipeline steps

  private renderSteps(): void {
    clear(this.stepsBar);
    this.stepsBar.appendChild(el('span', { class: 'label' }, this.data.steps.length > 1 ? 'Pipeline:' : 'Pipeline: the graph as compiled (no passes run)'));
    this.data.steps.forEach((s, i) => {
      const created = i > 0 ? s.upsert.filter((n) => !this.tables[i - 1].has(n.id)).length : 0;
      const removed = s.remove.length;
      const b = el('button', { 'data-step': i, 'aria-pressed': i === this.step ? 'true' : 'false', title: i === 0 ? 'the graph as compiled' : `the graph after pass ${s.name}` }, `${i}. ${s.name}`);
      if (created) b.appendChild(el('span', { class: 'plus' }, ` +${created}`));
      if (removed) b.appendChild(el('span', { class: 'minus' }, ` −${removed}`));
      b.addEventListener('click', () => this.switchStep(i));
      this.stepsBar.appendChild(b);
    });
  }

  // ---------------------------------------------------------------- expansion and selection

  /** Bumped by anything that makes a running expandMany stale (another one, collapse-all, a step change). */
  private layoutRun = 0;

  /**
   * Expand many groups at once without freezing the page: the layouts are computed in slices on a separate
   * engine (the page keeps showing, panning and zooming the current view), then swapped in and drawn.
   */
  async expandMany(ids: readonly string[], then: () => void): Promise<void> {
    const run = ++this.layoutRun;
    const next = new Set([...this.expanded, ...ids]);
    const engine = new LayoutEngine(this.data, this.view);
    const t0 = performance.now();
    this.root.setAttribute('data-busy', '1');
    const ok = await engine.prepare(next, {
      cancelled: () => run !== this.layoutRun,
      onProgress: (done, total) => this.showProgress(`Laying out ${done} / ${total} groups…`),
    });
    if (!ok) return;
    this.showProgress('');
    this.expanded = next;
    this.engine = engine;
    this.render();
    this.timings.layout = performance.now() - t0;
    this.stats.textContent = this.stats.textContent!.replace(/layout \d+ ms$/, `layout ${this.timings.layout.toFixed(0)} ms`);
    then();
    this.root.removeAttribute('data-busy');
  }

  private showProgress(text: string): void {
    this.progress.textContent = text;
    this.progress.style.display = text ? '' : 'none';
  }

  expand(id: string): void {
    if (this.expanded.has(id)) return;
    this.expanded.add(id);
    this.engine.invalidate(id);
    const before = this.scene.byKey.get(groupKey(id));
    this.render();
    this.keepInPlace(groupKey(id), before);
  }

  collapse(id: string): void {
    if (!id || !this.expanded.has(id)) return;
    for (const g of [...this.expanded]) if (g === id || g.startsWith(id + '.')) this.expanded.delete(g);
    this.engine.invalidate(id);
    const before = this.scene.byKey.get(groupKey(id));
    this.render();
    this.keepInPlace(groupKey(id), before);
  }

  /**
   * A pipeline step picked in the bar: the graph changes under the view, so keep what was in the middle of it where
   * it was — the item nearest the centre that the new step still has (it jumped elsewhere before).
   */
  private switchStep(i: number): void {
    const r = this.svgEl.getBoundingClientRect();
    const cx = (r.width / 2 - this.t.x) / this.t.k;
    const cy = (r.height / 2 - this.t.y) / this.t.k;
    const near = this.scene.items
      .filter((p) => !p.expanded)
      .map((p) => ({ p, d: (p.x - cx) ** 2 + (p.y - cy) ** 2 }))
      .sort((a, b) => a.d - b.d)
      .slice(0, 50)
      .map((x) => x.p);
    this.setStep(i);
    const anchor = near.find((p) => this.scene.byKey.has(p.key));
    if (anchor) this.keepInPlace(anchor.key, anchor);
  }

  /** Keep the top of a toggled item where it was on screen. */
  private keepInPlace(key: ItemKey, before: PlacedItem | undefined): void {
    const after = this.scene.byKey.get(key);
    if (!before || !after) return;
    this.t.x += (before.x - after.x) * this.t.k;
    this.t.y += (before.y - before.h / 2 - (after.y - after.h / 2)) * this.t.k;
    this.applyTransform();
  }

  select(s: Selection, rerender = true): void {
    this.selected = s;
    if (rerender) this.render();
    this.renderPanel();
  }

  /** Expand a node's ancestors, select it and bring it to the centre. */
  reveal(id: number): void {
    const g = this.view.groupOf.get(id);
    if (!g) return;
    let changed = false;
    for (const a of [...ancestors(g), g]) {
      if (!this.expanded.has(a.id)) {
        this.expanded.add(a.id);
        this.engine.invalidate(a.id);
        changed = true;
      }
    }
    this.selected = { kind: 'node', id };
    void changed;
    this.render();
    this.renderPanel();
    this.centerOn(nodeKey(id));
  }

  revealGroup(id: string): void {
    const g = this.view.groups.get(id);
    if (!g) return;
    for (const a of ancestors(g)) {
      if (!this.expanded.has(a.id)) {
        this.expanded.add(a.id);
        this.engine.invalidate(a.id);
      }
    }
    this.selected = { kind: 'group', id };
    this.render();
    this.renderPanel();
    this.centerOn(groupKey(id));
  }

  // ---------------------------------------------------------------- search

  setSearch(q: string): void {
    this.search = q.trim();
    this.computeMatches();
    this.render();
    this.renderPanel();
  }

  private computeMatches(): void {
    this.matches.clear();
    const q = this.search.toLowerCase();
    if (!q) return;
    for (const id of this.view.order) {
      if (this.view.hidden.has(id)) continue;
      const n = this.view.nodes.get(id)!;
      const scope = this.data.scopes[n.scope] ?? '';
      if (`%${n.id}` === q || n.op.toLowerCase() === q || (n.name ?? '').toLowerCase().includes(q) || scope.toLowerCase().includes(q) || (q.length > 2 && n.op.toLowerCase().includes(q))) this.matches.add(id);
    }
  }

  private matchesIn(g: Group): number {
    if (!this.matches.size) return 0;
    let c = 0;
    const prefix = g.id + '.';
    for (const id of this.matches) {
      const s = this.view.groupOf.get(id)!.id;
      if (s === g.id || s.startsWith(prefix)) c++;
    }
    return c;
  }

  private matchCursor = -1;
  nextMatch(): void {
    if (!this.matches.size) return;
    const list = [...this.matches];
    this.matchCursor = (this.matchCursor + 1) % list.length;
    this.reveal(list[this.matchCursor]);
  }

  // ---------------------------------------------------------------- side panel

  renderPanel(): void {
    clear(this.panel);
    const p = this.panel;
    if (this.search) {
      const list = [...this.matches];
      p.appendChild(el('h3', {}, `Search: ${list.length} match${list.length === 1 ? '' : 'es'}`));
      const ul = el('ul', { id: 'results' });
      for (const id of list.slice(0, 200)) ul.appendChild(el('li', {}, this.nodeLink(id)));
      if (list.length > 200) ul.appendChild(el('li', { class: 'muted' }, `… and ${list.length - 200} more`));
      p.appendChild(ul);
    }
    const s = this.selected;
    if (s?.kind === 'node') this.nodePanel(s.id);
    else if (s?.kind === 'group') this.groupPanel(s.id);
    else if (!this.search) this.overviewPanel();
  }

  private row(k: string, v: Child, cls = 'v'): HTMLTableRowElement {
    return el('tr', {}, el('td', { class: 'k' }, k), el('td', { class: cls }, v));
  }

  nodeLink(id: number): HTMLElement {
    const n = this.view.nodes.get(id);
    if (!n) return el('span', { class: 'muted' }, `%${id}`);
    const a = el('a', { 'data-goto': id }, `%${id} ${n.op}`);
    a.addEventListener('click', () => this.reveal(id));
    const extra = n.name ?? this.data.scopes[n.scope] ?? '';
    return el('span', {}, a, ' ', el('span', { class: 'muted mono' }, `${n.type}${extra ? ' · ' + extra : ''}`));
  }

  private nodePanel(id: number): void {
    const n = this.view.nodes.get(id)!;
    const p = this.panel;
    const scope = this.data.scopes[n.scope] ?? '';
    const state = this.view.ghosts.has(id) ? ` (removed by ${this.view.name})` : this.view.created.has(id) ? ` (created by ${this.view.name}${this.view.createdBy.has(id) ? `, rule ${this.view.createdBy.get(id)}` : ''})` : '';
    p.appendChild(el('h2', { id: 'panel-title' }, `%${n.id} ${n.op}${state}`));
    if (this.data.ops[n.op]?.doc) p.appendChild(el('p', { class: 'doc' }, this.data.ops[n.op].doc));
    const t = el('table', { id: 'node-props' });
    t.appendChild(this.row('op', n.op));
    const m = /^(\w+)(\[.*\])$/.exec(n.type);
    t.appendChild(this.row('dtype', m ? m[1] : n.type));
    t.appendChild(this.row('shape', m ? m[2] : ''));
    if (n.name !== undefined) t.appendChild(this.row(this.data.ops[n.op]?.source && n.op === 'param' ? 'weight' : 'name', n.name));
    const scopeLink = scope ? el('a', {}, scope) : el('span', { class: 'muted' }, '(root)');
    if (scope) scopeLink.addEventListener('click', () => this.revealGroup(scope));
    t.appendChild(this.row('scope', scopeLink));
    if (n.loc) t.appendChild(this.row('source', n.loc));
    if (n.sharding) t.appendChild(this.row('sharding', n.sharding.spec));
    p.appendChild(t);
    if (n.attrs && Object.keys(n.attrs).length) {
      p.appendChild(el('h3', {}, 'Attributes'));
      const at = el('table', { id: 'node-attrs' });
      for (const [k, v] of Object.entries(n.attrs)) at.appendChild(this.row(k, JSON.stringify(v)));
      p.appendChild(at);
    }
    if (n.sharding) this.shardingPanel(n);
    if (n.m && this.data.metrics.length) {
      p.appendChild(el('h3', {}, 'Cost'));
      const ct = el('table', { id: 'node-cost' });
      this.data.metrics.forEach((mt, i) => {
        const v = n.m![i];
        const exact = v !== null && (mt.unit === 'count' || mt.unit === 'bytes') ? el('span', { class: 'exact' }, `(${fmtExact(v)})`) : '';
        ct.appendChild(this.row(mt.label, el('span', {}, v === null ? '—' : fmtMetric(v, mt.unit), exact ? ' ' : '', exact)));
      });
      p.appendChild(ct);
      if (this.data.metricNote) p.appendChild(el('p', { class: 'muted' }, this.data.metricNote));
    }
    p.appendChild(el('h3', {}, `Inputs (${n.inputs.length})`));
    const ins = el('ul', { id: 'node-inputs' });
    n.inputs.forEach((i) => ins.appendChild(el('li', {}, this.nodeLink(i))));
    p.appendChild(ins);
    const users = this.view.users.get(id) ?? [];
    p.appendChild(el('h3', {}, `Users (${users.length})`));
    const us = el('ul', { id: 'node-users' });
    users.forEach((u) => us.appendChild(el('li', {}, this.nodeLink(u))));
    const outs = this.view.outputs.filter((o) => o.node === id);
    outs.forEach((o) => us.appendChild(el('li', {}, `graph output `, el('b', {}, o.name))));
    p.appendChild(us);
  }

  /** How a node's output lies on the mesh, what it costs per chip, and the collectives it needs. */
  private shardingPanel(n: VizNode): void {
    const s = n.sharding!;
    const p = this.panel;
    const metric = (key: string) => {
      const i = this.data.metrics.findIndex((m) => m.key === key);
      return i >= 0 ? n.m?.[i] ?? null : null;
    };
    const [time, flops, bytes] = [metric('chip_time'), metric('chip_flops'), metric('chip_bytes')];
    p.appendChild(el('h3', {}, 'Sharding'));
    const t = el('table', { id: 'node-sharding' });
    t.appendChild(this.row('spec', s.spec));
    t.appendChild(this.row('per chip', s.local));
    t.appendChild(this.row('split', s.ways === 1 ? 'replicated on every chip' : `${s.ways} ways`));
    t.appendChild(this.row('HLO', s.hlo));
    if (s.partial) t.appendChild(this.row('pending', `partial sums (${s.partial})`));
    if (time !== null) t.appendChild(this.row('time / chip', `${fmtSeconds(time)}  (${fmtSI(flops ?? 0, 'FLOP')}, ${fmtSI(bytes ?? 0, 'B')})`));
    const cs = s.collectives ?? [];
    if (!cs.length) t.appendChild(this.row('collectives', 'none'));
    for (const c of cs) t.appendChild(this.row(c.kind, `over ${c.axes}: ${fmtSI(c.bytes, 'B')}, ${fmtSeconds(c.seconds)}${c.weights ? ' (weights)' : ''}`));
    p.appendChild(t);
    if (this.data.mesh) p.appendChild(el('p', { class: 'muted' }, `on ${this.data.mesh}; collectives are placed at the node whose lowering needs them`));
  }

  private groupPanel(id: string): void {
    const g = this.view.groups.get(id)!;
    const p = this.panel;
    p.appendChild(el('h2', { id: 'panel-title' }, g.id || this.data.title));
    const actions = el('div', { class: 'actions' });
    if (g.id) {
      const b = el('button', { id: 'panel-toggle' }, this.expanded.has(g.id) ? 'Collapse' : 'Expand');
      b.addEventListener('click', () => (this.expanded.has(g.id) ? this.collapse(g.id) : this.expand(g.id)));
      actions.appendChild(b);
    }
    const all = el('button', { id: 'panel-expand-all' }, 'Expand everything inside');
    all.addEventListener('click', () => {
      const inside = [...this.view.groups.keys()].filter((k) => k === g.id || k.startsWith(g.id ? g.id + '.' : ''));
      void this.expandMany(inside, () => this.centerOn(groupKey(g.id)));
    });
    actions.appendChild(all);
    p.appendChild(actions);
    const t = el('table', { id: 'group-props' });
    t.appendChild(this.row('scope', g.id || '(root)'));
    t.appendChild(this.row('nodes', String(g.size)));
    if (g.groups.length) t.appendChild(this.row('groups', g.groups.map((c) => c.label).join(', ')));
    if (g.created || g.removed) t.appendChild(this.row('this step', `+${g.created} created, −${g.removed} removed`));
    p.appendChild(t);
    if (this.data.metrics.length) {
      p.appendChild(el('h3', {}, 'Cost (sum over the group)'));
      const ct = el('table', { id: 'group-cost' });
      this.data.metrics.forEach((mt, i) => ct.appendChild(this.row(mt.label, fmtMetric(this.groupMetric(g, i), mt.unit))));
      p.appendChild(ct);
    }
    const ops = new Map<string, number>();
    const prefix = g.id ? g.id + '.' : '';
    for (const [nid, grp] of this.view.groupOf) if (grp.id === g.id || grp.id.startsWith(prefix)) ops.set(this.view.nodes.get(nid)!.op, (ops.get(this.view.nodes.get(nid)!.op) ?? 0) + 1);
    p.appendChild(el('h3', {}, 'Ops'));
    p.appendChild(el('p', { class: 'mono' }, [...ops.entries()].sort((a, b) => b[1] - a[1]).map(([o, c]) => `${o} ×${c}`).join('  ')));
  }

  private overviewPanel(): void {
    const p = this.panel;
    p.appendChild(el('h2', { id: 'panel-title' }, this.data.title));
    const t = el('table', {});
    for (const [k, v] of Object.entries(this.data.info)) t.appendChild(this.row(k, v));
    t.appendChild(this.row('nodes', String(this.view.order.length - this.view.ghosts.size)));
    t.appendChild(this.row('outputs', this.view.outputs.map((o) => o.name).join(', ')));
    p.appendChild(t);
    const hp = Object.entries(this.data.hparams ?? {});
    if (hp.length) {
      const d = el('details', { id: 'hparams', open: true }, el('summary', {}, `Hyperparameters (${hp.length})`));
      const ht = el('table', {});
      for (const [k, v] of hp) ht.appendChild(this.row(k, typeof v === 'string' ? JSON.stringify(v) : String(v)));
      d.appendChild(ht);
      p.appendChild(d);
    }
    if (this.view.index > 0) {
      p.appendChild(el('h3', {}, `Pass ${this.view.name}`));
      const trace = this.data.steps[this.view.index].trace ?? [];
      const rules = new Map<string, number>();
      for (const h of trace) rules.set(h.rule, (rules.get(h.rule) ?? 0) + 1);
      const ul = el('ul', { id: 'pass-rules' });
      for (const [r, c] of rules) ul.appendChild(el('li', {}, `${r} ×${c}`));
      if (!rules.size) ul.appendChild(el('li', { class: 'muted' }, 'no rewrite trace'));
      p.appendChild(ul);
      p.appendChild(el('h3', {}, `Created (${this.view.created.size})`));
      const cu = el('ul', { id: 'created-list' });
      for (const id of [...this.view.created].slice(0, 200)) cu.appendChild(el('li', {}, this.nodeLink(id)));
      p.appendChild(cu);
      p.appendChild(el('h3', {}, `Removed (${this.view.ghosts.size})`));
      const ru = el('ul', { id: 'removed-list' });
      for (const id of [...this.view.ghosts].slice(0, 200)) ru.appendChild(el('li', {}, this.nodeLink(id)));
      p.appendChild(ru);
    }
    p.appendChild(el('h3', {}, 'How to'));
    p.appendChild(
      el(
        'ul',
        { class: 'muted' },
        el('li', {}, 'Drag to pan, wheel to zoom, Fit to see everything.'),
        el('li', {}, 'Click a box to inspect it; + or double-click expands a group, − collapses it.'),
        el('li', {}, '/ to search by name, op, scope or %id; Enter jumps to the next match.'),
        el('li', {}, 'Pick a pipeline step to see the graph after that pass: created nodes green, removed ones red and dashed.'),
      ),
    );
  }

  // ---------------------------------------------------------------- pan and zoom

  private suppressClick = false;

  private installPanZoom(): void {
    let start: { x: number; y: number; tx: number; ty: number; id: number } | null = null;
    let moved = false;
    this.svgEl.addEventListener('pointerdown', (e) => {
      if (e.button !== 0) return;
      start = { x: e.clientX, y: e.clientY, tx: this.t.x, ty: this.t.y, id: e.pointerId };
      moved = false;
      this.suppressClick = false;
    });
    this.svgEl.addEventListener('pointermove', (e) => {
      if (!start || e.pointerId !== start.id) return;
      const dx = e.clientX - start.x;
      const dy = e.clientY - start.y;
      if (!moved && Math.hypot(dx, dy) < 4) return;
      if (!moved) {
        moved = true;
        this.svgEl.setPointerCapture(e.pointerId);
        this.svgEl.classList.add('panning');
      }
      this.t.x = start.tx + dx;
      this.t.y = start.ty + dy;
      this.applyTransform();
    });
    const end = () => {
      if (moved) {
        this.suppressClick = true;
        setTimeout(() => (this.suppressClick = false), 0);
      }
      start = null;
      this.svgEl.classList.remove('panning');
    };
    this.svgEl.addEventListener('pointerup', end);
    this.svgEl.addEventListener('pointercancel', end);
    this.svgEl.addEventListener('click', () => {
      if (!this.suppressClick && this.selected) this.select(null);
    });
    this.svgEl.addEventListener(
      'wheel',
      (e) => {
        e.preventDefault();
        const r = this.svgEl.getBoundingClientRect();
        const px = e.clientX - r.left;
        const py = e.clientY - r.top;
        const k = Math.min(4, Math.max(0.03, this.t.k * Math.exp(-e.deltaY * (e.deltaMode ? 0.05 : 0.0015))));
        this.t.x = px - ((px - this.t.x) * k) / this.t.k;
        this.t.y = py - ((py - this.t.y) * k) / this.t.k;
        this.t.k = k;
        this.applyTransform();
      },
      { passive: false },
    );
  }

  applyTransform(): void {
    this.viewport.setAttribute('transform', `translate(${this.t.x.toFixed(1)},${this.t.y.toFixed(1)}) scale(${this.t.k.toFixed(4)})`);
  }

  toGraph(e: MouseEvent): { x: number; y: number } {
    const r = this.svgEl.getBoundingClientRect();
    return { x: (e.clientX - r.left - this.t.x) / this.t.k, y: (e.clientY - r.top - this.t.y) / this.t.k };
  }

  fit(): void {
    const r = this.svgEl.getBoundingClientRect();
    const k = Math.min(1.5, (r.width - 20) / this.scene.w, (r.height - 20) / this.scene.h);
    this.t = { k, x: (r.width - this.scene.w * k) / 2, y: (r.height - this.scene.h * k) / 2 };
    this.applyTransform();
  }

  /** Readable from the top: full width when it fits at ≥ 60%, the top of the graph first. */
  initialView(): void {
    const r = this.svgEl.getBoundingClientRect();
    const k = Math.max(0.6, Math.min(1, (r.width - 20) / this.scene.w, this.scene.h * 0.6 < r.height ? (r.height - 20) / this.scene.h : 1));
    this.t = { k, x: (r.width - this.scene.w * k) / 2, y: this.scene.h * k < r.height ? (r.height - this.scene.h * k) / 2 : 10 };
    this.applyTransform();
  }

  centerOn(key: ItemKey): void {
    const p = this.scene.byKey.get(key);
    if (!p) return;
    const r = this.svgEl.getBoundingClientRect();
    const k = Math.max(this.t.k, 0.8);
    this.t = { k, x: r.width / 2 - p.x * k, y: r.height / 2 - p.y * k };
    this.applyTransform();
  }

  // ---------------------------------------------------------------- live reload banner

  showBanner(text: string, ok = false): void {
    this.banner.textContent = text;
    this.banner.className = text ? (ok ? 'show ok' : 'show') : '';
  }
}

interface MetricScale {
  index: number;
  min: number;
  max: number;
}

function ramp(f: number): string {
  const x = f * (RAMP.length - 1);
  const i = Math.min(RAMP.length - 2, Math.floor(x));
  const t = x - i;
  const a = hex(RAMP[i]);
  const b = hex(RAMP[i + 1]);
  return `rgb(${a.map((c, j) => Math.round(c + (b[j] - c) * t)).join(',')})`;
}

function hex(h: string): number[] {
  return [1, 3, 5].map((i) => parseInt(h.slice(i, i + 2), 16));
}

/** A smooth path through route points (quadratic curves between midpoints). */
export function smoothPath(pts: readonly { x: number; y: number }[]): string {
  const f = (v: number) => v.toFixed(1);
  if (pts.length < 2) return '';
  let d = `M${f(pts[0].x)},${f(pts[0].y)}`;
  if (pts.length === 2) return d + `L${f(pts[1].x)},${f(pts[1].y)}`;
  d += `L${f((pts[0].x + pts[1].x) / 2)},${f((pts[0].y + pts[1].y) / 2)}`;
  for (let i = 1; i < pts.length - 1; i++) {
    const m = { x: (pts[i].x + pts[i + 1].x) / 2, y: (pts[i].y + pts[i + 1].y) / 2 };
    d += `Q${f(pts[i].x)},${f(pts[i].y)} ${f(m.x)},${f(m.y)}`;
  }
  return d + `L${f(pts[pts.length - 1].x)},${f(pts[pts.length - 1].y)}`;
}

export { PAD };
