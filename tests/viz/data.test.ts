import * as fs from 'fs';
import * as http from 'http';
import * as os from 'os';
import * as path from 'path';
import { produce } from 'immer';
import { Graph, nodeCost, concreteShape, getNode } from '../../src/ir';
import { buildVizData } from '../../src/viz/data';
import { jsonForScript, renderHtml } from '../../src/viz/html';
import { toModelExplorer, modelExplorerNodeData } from '../../src/viz/modelExplorer';
import { startVizServer } from '../../src/viz/server';
import { buildStepView, defaultExpanded, replaySteps, representative, groupKey, nodeKey } from '../../src/viz/client/model';
import { LayoutEngine, placeScene } from '../../src/viz/client/layout';
import { toyDecoder } from './graphs';

const chip = { name: 'TPU v5e', peakFlops: 1.97e14, hbmBandwidth: 8.1e11 };

/** A "pass": drop the first softmax's input mul and feed softmax directly (a created and a removed node). */
function rewriteOnce(g: Graph): { graph: Graph; created: number; removed: number } {
  const sm = g.nodes.find((n) => n.op === 'softmax')!;
  const mul = getNode(g, sm.inputs[0]);
  const created = g.nextId;
  const graph = produce(g, (d) => {
    const i = d.nodes.findIndex((n) => n.id === mul.id);
    d.nodes.splice(i, 1, { ...mul, id: created, op: 'add' } as never);
    const s = d.nodes.find((n) => n.id === sm.id)!;
    s.inputs[0] = created;
    d.nextId = created + 1;
  });
  return { graph, created, removed: mul.id };
}

describe('viz data', () => {
  test('steps are deltas that replay to every graph of the pipeline; the diff names created and removed nodes', () => {
    const g0 = toyDecoder({ layers: 2 });
    const { graph: g1, created, removed } = rewriteOnce(g0);
    const data = buildVizData(
      [
        { name: 'input', graph: g0 },
        { name: 'fold', graph: g1, trace: [{ rule: 'mul→add', created: [created], replaced: [removed] }] },
        { name: 'noop', graph: g1 },
      ],
      { costEnv: { batch: 2, seq: 8 }, chip },
    );
    expect(data.steps[0].upsert).toHaveLength(g0.nodes.length);
    // Only the new node and the softmax whose input changed are sent again.
    expect(data.steps[1].upsert.map((n) => n.id).sort()).toEqual([created, g0.nodes.find((n) => n.op === 'softmax')!.id].sort());
    expect(data.steps[1].remove).toEqual([removed]);
    expect(data.steps[2].upsert).toHaveLength(0);
    const tables = replaySteps(data);
    for (const [k, g] of [g0, g1, g1].entries()) {
      expect([...tables[k].keys()].sort((a, b) => a - b)).toEqual(g.nodes.map((n) => n.id).sort((a, b) => a - b));
      expect(data.steps[k].order).toEqual(g.nodes.map((n) => n.id));
    }
    const view = buildStepView(data, tables, 1, { showConstants: false });
    expect([...view.created]).toEqual([created]);
    expect([...view.ghosts]).toEqual([removed]);
    expect(view.createdBy.get(created)).toBe('mul→add');
    expect(view.groups.get('model.layers.0.self_attn')!.removed).toBe(1);
    expect(view.groups.get('model.layers.0')!.created).toBe(1);
    expect(view.groups.get('model.layers.1')!.created).toBe(0);
  });

  test('cost overlay equals the op registry cost at the given dims, and the roofline time follows', () => {
    const g = toyDecoder({ layers: 1, d: 8 });
    const env = { batch: 2, seq: 8 };
    const data = buildVizData([{ name: 'input', graph: g }], { costEnv: env, chip });
    expect(data.metrics.map((m) => m.key)).toEqual(['flops', 'transcendentals', 'bytes', 'intensity', 'time']);
    const mm = g.nodes.find((n) => n.op === 'matmul')!;
    const vn = data.steps[0].upsert.find((n) => n.id === mm.id)!;
    const t = (id: number) => ({ dtype: getNode(g, id).type.dtype, shape: concreteShape(getNode(g, id).type.shape, env) });
    const c = nodeCost(mm, mm.inputs.map(t), t(mm.id));
    expect(c.flops).toBe(2 * 2 * 8 * 8 * 8); // 2·(b·s·out)·in
    expect(vn.m).toEqual([c.flops, c.transcendentals, c.bytes, c.flops / c.bytes, Math.max(c.flops / chip.peakFlops, c.bytes / chip.hbmBandwidth)]);
    expect(data.metricNote).toMatch(/batch=2, seq=8/);
    // Without sizes for the symbolic dims there are no costs rather than wrong ones.
    const bare = buildVizData([{ name: 'input', graph: g }]);
    expect(bare.metrics).toEqual([]);
    expect(bare.steps[0].upsert.every((n) => n.m === undefined)).toBe(true);
  });

  test('params carry their checkpoint name; sources drop the dtype/shape attrs their type shows', () => {
    const data = buildVizData([{ name: 'input', graph: toyDecoder() }]);
    const q = data.steps[0].upsert.find((n) => n.name === 'model.layers.1.self_attn.q_proj.weight')!;
    expect(q.op).toBe('param');
    expect(q.type).toBe('f32[8, 8]');
    expect(q.attrs).toEqual({ name: 'model.layers.1.self_attn.q_proj.weight' });
    expect(data.scopes[q.scope]).toBe('model.layers.1.self_attn');
    expect(data.ops.param.source).toBe(true);
    expect(data.ops.matmul.doc.length).toBeGreaterThan(0);
  });
});

describe('HTML page', () => {
  test('JSON in the page cannot close its script element and reads back unchanged', () => {
    const evil = { s: '</script><script>alert(1)</script><!-- \u2028 & >' };
    const text = jsonForScript(evil);
    expect(text).not.toMatch(/[<>&\u2028]/);
    expect(JSON.parse(text)).toEqual(evil);
  });

  test('a page for a graph with markup in every name has no markup from the model outside the data block', () => {
    const evil = '<script>window.__pwned=1</script>';
    const data = buildVizData([{ name: 'input', graph: toyDecoder({ evil }) }], { title: `t${evil}` });
    const html = renderHtml(data);
    // (booleans, not toContain: a failure would print the whole page)
    expect(html.match(/<script/g)!.length).toBe(2); // the data block and the client
    expect(html.includes('<title>t&lt;script&gt;window.__pwned=1&lt;/script&gt; — Lapidary</title>')).toBe(true);
    expect(html.includes(`Content-Security-Policy" content="default-src &#39;none&#39;`)).toBe(true);
    expect(/https?:\/\/(?!www\.w3\.org)/.test(html)).toBe(false); // no network references but XML namespaces
  });
});

describe('Model Explorer export', () => {
  test('graph JSON: namespaces from scopes, incoming edges per input, output metadata', () => {
    const g = toyDecoder({ layers: 1 });
    const me = toModelExplorer([{ id: 'toy', graph: g }], 'toy');
    expect(me.graphs[0].nodes).toHaveLength(g.nodes.length);
    const mm = g.nodes.find((n) => n.op === 'matmul' && n.scope === 'model.layers.0.self_attn')!;
    const m = me.graphs[0].nodes.find((n) => n.id === String(mm.id))!;
    expect(m.namespace).toBe('model/layers/0/self_attn');
    expect(m.incomingEdges).toEqual(mm.inputs.map((s, i) => ({ sourceNodeId: String(s), sourceNodeOutputId: '0', targetNodeInputId: String(i) })));
    expect(m.outputsMetadata[0].attrs.find((a) => a.key === 'shape')!.value).toBe('[batch, seq, 8]');
    expect(m.attrs).toContainEqual({ key: 'transpose_b', value: 'true' });
    const logits = me.graphs[0].nodes.find((n) => n.id === String(g.outputs[0].node))!;
    expect(logits.outputsMetadata[0].attrs).toContainEqual({ key: 'tensor_name', value: 'logits' });
  });

  test('node data: one value per costed node', () => {
    const g = toyDecoder({ layers: 1 });
    const nd = modelExplorerNodeData(g, 'flops', { batch: 1, seq: 4 });
    const mm = g.nodes.find((n) => n.op === 'matmul')!;
    expect(nd.results[String(mm.id)].value).toBe(2 * 4 * 8 * 8);
    expect(() => modelExplorerNodeData(g, 'flopz', { batch: 1, seq: 4 })).toThrow(/unknown metric 'flopz'/);
  });
});

describe('page model and layout', () => {
  const data = buildVizData([{ name: 'input', graph: toyDecoder({ layers: 3 }) }]);
  const view = buildStepView(data, replaySteps(data), 0, { showConstants: false });

  test('scopes become nested groups; repeated blocks start collapsed', () => {
    expect(view.groups.get('model.layers')!.groups.map((g) => g.label)).toEqual(['layers.0', 'layers.1', 'layers.2']);
    expect(view.groups.get('model.layers.1')!.groups.map((g) => g.label)).toEqual(['input_layernorm', 'self_attn', 'post_attention_layernorm', 'pre_feedforward_layernorm', 'mlp', 'post_feedforward_layernorm']);
    const exp = defaultExpanded(view);
    expect(exp.has('model.layers')).toBe(true);
    expect(exp.has('model.layers.0')).toBe(false);
    // Constants are hidden by default but still counted nowhere; every other node sits in exactly one group.
    const placed = [...view.groups.values()].reduce((a, g) => a + g.nodes.length, 0);
    expect(placed + view.hidden.size).toBe(view.order.length);
    const q = data.steps[0].upsert.find((n) => n.name === 'model.layers.2.self_attn.q_proj.weight')!.id;
    expect(representative(view, q, exp)).toBe(groupKey('model.layers.2'));
    expect(representative(view, q, new Set([...exp, 'model.layers.2', 'model.layers.2.self_attn']))).toBe(nodeKey(q));
  });

  test('an edge is filed once, under the lowest group holding both ends, with ports on the way', () => {
    const layers = view.groups.get('model.layers')!;
    // layer i → layer i+1 (the residual stream) is an edge between the layers' boxes.
    expect(layers.edges.map((e) => `${e.fromItem}>${e.toItem}`)).toEqual(expect.arrayContaining(['g:model.layers.0>g:model.layers.1', 'g:model.layers.1>g:model.layers.2']));
    const total = [...view.groups.values()].reduce((a, g) => a + g.edges.length, 0);
    let expected = 0;
    for (const id of view.order) if (!view.hidden.has(id)) for (const i of view.nodes.get(id)!.inputs) if (!view.hidden.has(i)) expected++;
    // Edges inside one node's own group are filed too; none is lost or doubled.
    const selfEdges = [...view.groups.values()].reduce((a, g) => a + g.edges.filter((e) => e.fromItem === e.toItem).length, 0);
    expect(total + selfEdges).toBe(expected);
    expect(view.groups.get('model.layers.1.self_attn')!.ports.some((p) => p.from.startsWith('i:'))).toBe(true);
  });

  test('layout is cached per group: expanding one layer lays out that layer and its ancestors only', () => {
    const engine = new LayoutEngine(data, view);
    const exp = defaultExpanded(view);
    const s0 = placeScene(engine, exp);
    const first = engine.groupsLaidOut;
    expect(s0.items.every((p) => Number.isFinite(p.x) && Number.isFinite(p.y))).toBe(true);
    exp.add('model.layers.1');
    engine.invalidate('model.layers.1');
    const s1 = placeScene(engine, exp);
    expect(engine.groupsLaidOut - first).toBe(4); // layers.1, layers, model, root
    // Children lie inside their expanded parent's frame, and siblings do not overlap.
    const frame = s1.byKey.get('g:model.layers.1')!;
    const kids = s1.items.filter((p) => (p.group?.parent?.id ?? view.groupOf.get(p.node!)?.id) === 'model.layers.1');
    expect(kids.length).toBe(view.groups.get('model.layers.1')!.groups.length + view.groups.get('model.layers.1')!.nodes.length);
    for (const k of kids) {
      expect(k.x - k.w / 2).toBeGreaterThanOrEqual(frame.x - frame.w / 2);
      expect(k.x + k.w / 2).toBeLessThanOrEqual(frame.x + frame.w / 2);
      expect(k.y + k.h / 2).toBeLessThanOrEqual(frame.y + frame.h / 2);
    }
    for (const a of kids) for (const b of kids) if (a !== b) expect(Math.abs(a.x - b.x) * 2 >= a.w + b.w - 0.5 || Math.abs(a.y - b.y) * 2 >= a.h + b.h - 0.5).toBe(true);
  });
});

describe('viz --serve', () => {
  function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string; type?: string }> {
    return new Promise((resolve, reject) => {
      http.get(url, { headers }, (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode!, body, type: res.headers['content-type'] }));
      }).on('error', reject);
    });
  }

  test('serves the page and its event stream on loopback only; reloads on change, reports a broken model', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lv-serve-'));
    const file = path.join(dir, 'm.txt');
    fs.writeFileSync(file, 'v1');
    const server = await startVizServer({
      port: 0,
      watch: [file],
      pollMs: 40,
      build: () => {
        const t = fs.readFileSync(file, 'utf8');
        if (t.startsWith('bad')) throw Object.assign(new Error('broken'), { formatted: 'm.txt:1:1: error: bad model\n' });
        return `<html>${t}</html>`;
      },
    });
    try {
      expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
      const page = await get(server.url);
      expect(page).toMatchObject({ status: 200, body: '<html>v1</html>' });
      expect(page.type).toMatch(/text\/html/);
      expect((await get(server.url + 'etc/passwd')).status).toBe(404);
      expect((await get(server.url + '../../etc/passwd')).status).toBe(404);
      expect((await get(server.url, { Host: 'evil.example:80' })).status).toBe(403);
      // The event stream: a change rebuilds and sends `reload`; a broken model sends `failed` with diagnostics.
      const events: string[] = [];
      const req = http.get(server.url + 'events', (res) => res.on('data', (c) => events.push(String(c))));
      await new Promise((r) => setTimeout(r, 100));
      fs.writeFileSync(file, 'v2 longer');
      await waitFor(() => events.join('').includes('event: reload'));
      expect((await get(server.url)).body).toBe('<html>v2 longer</html>');
      fs.writeFileSync(file, 'bad model');
      await waitFor(() => events.join('').includes('event: failed'));
      expect(events.join('')).toContain('data: m.txt:1:1: error: bad model');
      expect((await get(server.url)).body).toBe('<html>v2 longer</html>'); // the last good page stays
      req.destroy();
    } finally {
      await server.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

async function waitFor(ok: () => boolean, ms = 5000): Promise<void> {
  const t0 = Date.now();
  while (!ok()) {
    if (Date.now() - t0 > ms) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}
