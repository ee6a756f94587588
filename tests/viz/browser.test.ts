/**
 * End-to-end tests of the visualizer page in a real browser: Debian's Chromium driven by playwright-core
 * (`npm test` installs Chromium when it is missing; LAPIDARY_CHROMIUM overrides the path). One browser for the
 * file. Screenshots go to tmp/viz-shots/ (look at them when changing the page).
 */
import * as fs from 'fs';
import * as path from 'path';
import * as os from 'os';
import { chromium, Browser, BrowserContext, Page } from 'playwright-core';
import { compileModel } from '../../grammar';
import { concreteShape, getNode, nodeCost, Graph } from '../../src/ir';
import { lapidary } from '../cli/helpers';
import { buildVizData } from '../../src/viz/data';
import { renderHtml } from '../../src/viz/html';
import { startVizServer } from '../../src/viz/server';
import { fmtExact } from '../../src/viz/fmt';
import { pipelineSteps, vizOutput, VizOptions } from '../../src/cli/commands/viz';
import { resolvePipeline } from '../../src/passes';
import { toyDecoder } from './graphs';

const ROOT = path.join(__dirname, '..', '..');
const MODEL = path.join(ROOT, 'gemma2.model');
const TINY_CONFIG = path.join(ROOT, 'tests', 'fixtures', 'gemma2-tiny', 'config.json');
const SHOTS = path.join(ROOT, 'tmp', 'viz-shots');
const CHROMIUM = process.env.LAPIDARY_CHROMIUM || '/usr/bin/chromium';

let dir: string;
let browser: Browser;
let ctx: BrowserContext;

function compile(opts: { variant?: string; config?: object }): Graph {
  const r = compileModel(fs.readFileSync(MODEL, 'utf8'), 'gemma2.model', opts);
  if (!r.graph) throw new Error(r.diagnostics.map((d) => d.message).join('\n'));
  return r.graph;
}

/** The built CLI, as a user runs it (npm test builds dist/ first). */
async function run(args: string[]): Promise<number> {
  const r = lapidary(args);
  if (r.code !== 0) process.stderr.write(r.stderr);
  return r.code;
}

async function open(file: string): Promise<{ page: Page; ms: number; errors: string[] }> {
  const page = await ctx.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
  const t0 = Date.now();
  await page.goto(file.startsWith('http') ? file : 'file://' + file);
  await page.waitForSelector('body[data-ready="1"]', { timeout: 30_000 });
  return { page, ms: Date.now() - t0, errors };
}

/** Collapsed layer boxes (`model.layers.N`, not their sub-groups). */
const collapsedLayers = (page: Page) => page.locator('g.group.collapsed').evaluateAll((els) => els.filter((e) => /^model\.layers\.\d+$/.test(e.getAttribute('data-group')!)).length);
/** Drag the canvas (as a user pans) until the element is well inside the window. */
async function panTo(page: Page, selector: string): Promise<void> {
  const canvas = (await page.locator('#canvas').boundingBox())!;
  const [cx, cy] = [canvas.x + canvas.width / 2, canvas.y + canvas.height / 2];
  for (let i = 0; i < 20; i++) {
    const box = await page.locator(selector).boundingBox();
    if (!box) throw new Error(`${selector} is not drawn`);
    const [ex, ey] = [box.x + box.width / 2, box.y + box.height / 2];
    if (Math.abs(ex - cx) < canvas.width / 2 - 60 && Math.abs(ey - cy) < canvas.height / 2 - 60) return;
    // One drag of at most a third of the window, starting from its middle (so it ends inside it).
    const dx = Math.max(-canvas.width / 3, Math.min(canvas.width / 3, cx - ex));
    const dy = Math.max(-canvas.height / 3, Math.min(canvas.height / 3, cy - ey));
    await page.mouse.move(cx, cy);
    await page.mouse.down();
    await page.mouse.move(cx + dx / 2, cy + dy / 2, { steps: 2 });
    await page.mouse.move(cx + dx, cy + dy, { steps: 2 });
    await page.mouse.up();
  }
  throw new Error(`could not pan to ${selector}`);
}

/** Pan to a group's +/− button and click it. */
async function toggle(page: Page, group: string): Promise<void> {
  const sel = `[data-group="${group}"] > .toggle`;
  await panTo(page, sel);
  await page.locator(sel).click();
}

const shot = (page: Page, name: string) => page.screenshot({ path: path.join(SHOTS, `${name}.png`) });
const panelText = (page: Page) => page.locator('#panel').innerText();

beforeAll(async () => {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run \`bash scripts/ensure-chromium.sh\` (apt-get install chromium), or set LAPIDARY_CHROMIUM`);
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lapidary-viz-'));
  fs.mkdirSync(SHOTS, { recursive: true });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  ctx = await browser.newContext({ viewport: { width: 1400, height: 900 }, acceptDownloads: true });
}, 60_000);

afterAll(async () => {
  await ctx?.close();
  await browser?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('the page in Chromium', () => {
  test('tiny Gemma 2: expand a layer, select a node and read the panel, search, export', async () => {
    const out = path.join(dir, 'tiny.html');
    expect(await run(['viz', MODEL, '--config', TINY_CONFIG, '-o', out])).toBe(0);
    const { page, errors } = await open(out);
    expect(await page.locator('header h1').innerText()).toBe('gemma2');
    // The four layers start collapsed, one box each.
    expect(await collapsedLayers(page)).toBe(4);
    // Select the collapsed layer: the panel offers Expand; opening it with its + turns that into Collapse.
    await panTo(page, 'g.group[data-group="model.layers.1"] rect.box');
    await page.locator('g.group[data-group="model.layers.1"] rect.box').click();
    expect(await page.locator('#panel-toggle').innerText()).toBe('Expand');
    await toggle(page, 'model.layers.1');
    expect(await page.locator('g.frame[data-group="model.layers.1"]').count()).toBe(1);
    expect(await page.locator('#panel-toggle').innerText()).toBe('Collapse');
    for (const sub of ['input_layernorm', 'self_attn', 'mlp', 'post_feedforward_layernorm']) {
      expect(await page.locator(`g.group.collapsed[data-group="model.layers.1.${sub}"]`).count()).toBe(1);
    }
    await toggle(page, 'model.layers.1.mlp');
    await shot(page, 'tiny-layer1-mlp');

    // Select the MLP's down projection matmul and check the panel against the IR and the cost rule.
    const g = compile({ config: JSON.parse(fs.readFileSync(TINY_CONFIG, 'utf8')) });
    const steps = pipelineSteps(g, resolvePipeline());
    const g0 = steps[0].graph;
    const down = g0.nodes.find((n) => n.op === 'matmul' && n.scope === 'model.layers.1.mlp' && n.inputs.some((i) => getNode(g0, i).attrs.name === 'model.layers.1.mlp.down_proj.weight'))!;
    await panTo(page, `g.node[data-node="${down.id}"]`);
    await page.locator(`g.node[data-node="${down.id}"]`).click();
    const text = await panelText(page);
    expect(text).toContain(`%${down.id} matmul`);
    expect(text).toMatch(/dtype\s+f32/);
    expect(text).toMatch(/shape\s+\[batch, seq, 64\]/);
    expect(text).toMatch(/scope\s+model\.layers\.1\.mlp/);
    expect(text).toContain('model.layers.1.mlp.down_proj.weight'); // the weight among its inputs
    // Symbolic seq is costed at the default 4096 capped by the model's bound: the tiny config's max_pos is 128.
    const env = { batch: 1, seq: 128 };
    const ty = (id: number) => ({ dtype: getNode(g0, id).type.dtype, shape: concreteShape(getNode(g0, id).type.shape, env) });
    const c = nodeCost(down, down.inputs.map(ty), ty(down.id));
    expect(c.flops).toBe(2 * 128 * 64 * 128);
    expect(text).toContain(`(${fmtExact(c.flops)})`);
    expect(text).toContain(`(${fmtExact(c.bytes)})`);
    expect(await page.locator(`g.node.selected[data-node="${down.id}"]`).count()).toBe(1);
    await shot(page, 'tiny-selected');

    // Search by weight name: one hit per layer, Enter goes to the first and opens its layer.
    await page.locator('#search').fill('q_proj');
    expect(await page.locator('#results li').count()).toBe(4);
    expect(await page.locator('g.group.match[data-group="model.layers.3"]').count()).toBe(1);
    await page.locator('#search').press('Enter');
    expect(await page.locator('g.frame[data-group="model.layers.0.self_attn"]').count()).toBe(1);
    expect(await panelText(page)).toMatch(/weight\s+model\.layers\.0\.self_attn\.q_proj\.weight/);
    await shot(page, 'tiny-search');

    // Colour by FLOPs: a legend with a range.
    await page.locator('#color-by').selectOption({ label: 'colour: FLOPs' });
    expect(await page.locator('#legend').innerText()).toMatch(/FLOPs[\s\S]*log scale[\s\S]*batch=1, seq=128/);

    // Export the current view.
    const [svgDl] = await Promise.all([page.waitForEvent('download'), page.locator('#export-svg').click()]);
    const svgText = fs.readFileSync((await svgDl.path())!, 'utf8');
    expect(svgText.startsWith('<svg')).toBe(true);
    expect(svgText).toContain('q_proj.weight');
    const [pngDl] = await Promise.all([page.waitForEvent('download'), page.locator('#export-png').click()]);
    const png = fs.readFileSync((await pngDl.path())!);
    expect(png.subarray(1, 4).toString()).toBe('PNG');
    expect(png.length).toBeGreaterThan(10_000);
    expect(errors).toEqual([]);
    await page.close();
  });

  test('pass steps: the graph after a pass, with the nodes it created and removed highlighted', async () => {
    const out = path.join(dir, 'tiny-steps.html');
    expect(await run(['viz', MODEL, '--config', TINY_CONFIG, '--passes', 'softcap-folding,attention-fusion', '-o', out])).toBe(0);
    const g = compile({ config: JSON.parse(fs.readFileSync(TINY_CONFIG, 'utf8')) });
    const steps = pipelineSteps(g, resolvePipeline({ passes: ['softcap-folding', 'attention-fusion'] }));
    const before = new Set(steps[0].graph.nodes.map((n) => n.id));
    const after = steps[1].graph;
    const created = after.nodes.filter((n) => !before.has(n.id));
    const removed = steps[0].graph.nodes.filter((n) => !after.nodes.some((m) => m.id === n.id));
    expect(created.length).toBeGreaterThan(0);

    const { page, errors } = await open(out);
    expect(await page.locator('#steps button').allInnerTexts()).toEqual(['0. input', expect.stringMatching(/^1\. softcap-folding \+\d+ −\d+$/), expect.stringMatching(/^2\. attention-fusion/)]);
    // Picking a step keeps what is in the middle of the view in place (it jumped elsewhere before).
    await panTo(page, 'g.group[data-group="model.layers.2"] rect.box');
    const boxBefore = (await page.locator('g.group[data-group="model.layers.2"] rect.box').boundingBox())!;
    await page.locator('#steps button[data-step="1"]').click();
    const boxAfter = (await page.locator('g.group[data-group="model.layers.2"] rect.box').boundingBox())!;
    expect(Math.abs(boxAfter.x + boxAfter.width / 2 - (boxBefore.x + boxBefore.width / 2))).toBeLessThan(3);
    expect(Math.abs(boxAfter.y - boxBefore.y)).toBeLessThan(3);
    expect(await page.locator('#steps button[data-step="1"]').getAttribute('aria-pressed')).toBe('true');
    // Collapsed layers carry +/- badges; the overview lists what the pass did.
    expect(await page.locator('g.group.created[data-group="model.layers.2"]').count()).toBe(1);
    expect(await page.locator('#created-list li').count()).toBe(created.length);
    expect(await page.locator('#removed-list li').count()).toBe(removed.length);
    // The badges sit on the box's edge: they cover neither of its text lines nor its expand button.
    const overlaps = await page.locator('g.group.created[data-group="model.layers.1"]').evaluate((g) => {
      const r = (e: Element) => e.getBoundingClientRect();
      const hit = (a: DOMRect, b: DOMRect) => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
      const badges = Array.from(g.querySelectorAll('g.badge')).map(r);
      const others = Array.from(g.querySelectorAll(':scope > text, :scope > g:not(.badge)')).map(r);
      return { badges: badges.length, hits: badges.filter((b) => others.some((o) => hit(b, o))).length };
    });
    expect(overlaps).toEqual({ badges: 2, hits: 0 });
    await toggle(page, 'model.layers.2');
    await toggle(page, 'model.layers.2.self_attn');
    const SCOPE = 'model.layers.2.self_attn';
    const inLayer = (ns: { id: number; scope: string }[]) => ns.filter((n) => n.scope === SCOPE).map((n) => String(n.id)).sort();
    const scopeOf = new Map([...steps[0].graph.nodes, ...after.nodes].map((n) => [String(n.id), n.scope]));
    const shownCreated = await page.locator('g.node.created').evaluateAll((els) => els.map((e) => e.getAttribute('data-node')!));
    const shownGhosts = await page.locator('g.node.ghost').evaluateAll((els) => els.map((e) => e.getAttribute('data-node')!));
    // Everything highlighted was created (removed) by the pass; inside the open attention block, all of it is shown.
    expect(shownCreated.every((id) => created.some((n) => String(n.id) === id))).toBe(true);
    expect(shownGhosts.every((id) => removed.some((n) => String(n.id) === id))).toBe(true);
    expect(shownCreated.filter((id) => scopeOf.get(id) === SCOPE).sort()).toEqual(inLayer(created));
    expect(shownGhosts.filter((id) => scopeOf.get(id) === SCOPE).sort()).toEqual(inLayer(removed.filter((n) => getNode(steps[0].graph, n.id).op !== 'constant')));
    expect(inLayer(created).length).toBeGreaterThan(0);
    await panTo(page, `g.node[data-node="${inLayer(created)[0]}"]`);
    await page.locator(`g.node[data-node="${inLayer(created)[0]}"]`).click();
    expect(await panelText(page)).toMatch(/created by softcap-folding, rule /);
    await shot(page, 'tiny-pass-diff');
    // Back to the input: no highlights.
    await page.locator('#steps button[data-step="0"]').click();
    expect(await page.locator('g.node.created, g.node.ghost').count()).toBe(0);
    expect(errors).toEqual([]);
    await page.close();
  });

  test('Gemma 2 27B opens with 46 collapsed layers and stays interactive', async () => {
    const out = path.join(dir, 'g27.html');
    expect(await run(['viz', MODEL, '--variant', '27b', '-o', out])).toBe(0);
    const { page, ms, errors } = await open(out);
    expect(await collapsedLayers(page)).toBe(46);
    const t0 = Date.now();
    await toggle(page, 'model.layers.45');
    await toggle(page, 'model.layers.45.self_attn');
    const expandMs = Date.now() - t0;
    expect(await page.locator('g.frame[data-group="model.layers.45.self_attn"]').count()).toBe(1);
    await page.locator('#search').fill('model.layers.45.mlp.down_proj.weight');
    expect(await page.locator('#results li').count()).toBe(1);
    await page.locator('#results a').click();
    expect(await panelText(page)).toMatch(/weight\s+model\.layers\.45\.mlp\.down_proj\.weight/);
    expect(await panelText(page)).toMatch(/shape\s+\[4608, 36864\]/);
    await shot(page, 'g27');
    process.stdout.write(`viz e2e: 27B page ready in ${ms} ms, expand layer + attention ${expandMs} ms (see bench/viz-load.ts for the measurement)\n`);
    expect(errors).toEqual([]);
    await page.close();
  });

  test('markup in model names is shown as text, never run', async () => {
    const evil = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">';
    const data = buildVizData([{ name: 'input', graph: toyDecoder({ layers: 2, evil }) }], { title: `evil${evil}`, info: { file: `m${evil}` }, costEnv: { batch: 1, seq: 8 } });
    const out = path.join(dir, 'evil.html');
    fs.writeFileSync(out, renderHtml(data));
    const { page, errors } = await open(out);
    expect(await page.locator('header h1').innerText()).toBe(`evil${evil}`);
    await page.locator('#search').fill('q_proj');
    await page.locator('#search').press('Enter');
    expect(await panelText(page)).toContain(`model.layers.0${evil}.self_attn.q_proj.weight`);
    // `window.__pwned` has a dot, so the scope splits there: the pieces are group titles, as text.
    expect(await page.locator('g.frame text.title').allTextContents()).toContain('0<script>window');
    await shot(page, 'evil');
    expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
    expect(await page.locator('img').count()).toBe(0);
    expect(await page.locator('script').count()).toBe(2);
    expect(errors).toEqual([]);
    await page.close();
  });

  test('sharding overlay (--mesh): the panel shows a node\'s layout, per-chip cost and collectives; colour by split ways; expand all', async () => {
    const out = path.join(dir, 'tiny-mesh.html');
    expect(await run(['viz', MODEL, '--config', TINY_CONFIG, '--batch', '8', '--seq', '16', '--chip', 'v5e', '--mesh', 'data=4,model=2', '--no-passes', '-o', out])).toBe(0);
    const g = compile({ config: JSON.parse(fs.readFileSync(TINY_CONFIG, 'utf8')) });
    const q = g.nodes.find((n) => n.op === 'matmul' && n.inputs.some((i) => getNode(g, i).attrs.name === 'model.layers.2.self_attn.q_proj.weight'))!;
    const { page, errors } = await open(out);
    expect(await panelText(page)).toMatch(/mesh\s+data=4,model=2 on 8 v5e \(2x4\), fsdp\+tp/);
    await page.locator('#search').fill(`%${q.id}`);
    await page.locator('#search').press('Enter');
    await page.locator('#search').fill('');
    const text = await panelText(page);
    // The column-parallel projection: batch over data, features over model, its weight all-gathered over data.
    expect(text).toMatch(/SHARDING[\s\S]*spec\s+\[data, -, model\]\s+per chip\s+bf16\[2, 16, 32\]\s+split\s+8 ways\s+HLO\s+\{devices=\[4,1,2\]<=\[8\]\}/);
    expect(text).toMatch(/time \/ chip\s+[\d.]+ [nµm]?s/);
    expect(text).toMatch(/all-gather\s+over data: 4\.1 KB, [\d.]+ [nµm]?s \(weights\)/);
    await page.locator('#color-by').selectOption({ label: 'colour: split ways (1 = replicated)' });
    expect(await page.locator('#legend').innerText()).toMatch(/split ways[\s\S]*\b1\b[\s\S]*\b8\b/);
    await shot(page, 'tiny-mesh');
    // Expand all: laid out in slices (the page stays responsive), then every group is open.
    await page.locator('#expand-all').click();
    await page.waitForSelector('#app:not([data-busy])');
    const groups = await page.evaluate(() => window.lapidary!.app.view.groups.size);
    expect(await page.locator('g.frame').count()).toBe(groups - 1); // all but the root, which has no frame
    expect(await page.locator('g.group.collapsed').count()).toBe(0);
    expect(errors).toEqual([]);
    await page.close();
  });

  test('a model file whose variant name and string hyperparameter carry markup renders inert', async () => {
    // tests/fixtures/viz/markup-names.model: payloads that would set window.__pwned or the document title.
    const file = path.join(ROOT, 'tests', 'fixtures', 'viz', 'markup-names.model');
    const src = fs.readFileSync(file, 'utf8');
    const unquote = (s: string) => JSON.parse(s) as string;
    const variant = unquote(/^variant ("(?:[^"\\]|\\.)*") \{ d = 16 \}$/m.exec(src)![1]);
    const note = unquote(/^  note  = ("(?:[^"\\]|\\.)*")$/m.exec(src)![1]);
    expect(variant).toContain('<script>');
    expect(note).toContain('</script><script>');
    const out = path.join(dir, 'markup.html');
    expect(await run(['viz', file, '--variant', variant, '-o', out])).toBe(0);
    const { page, errors } = await open(out);
    expect(await page.title()).toBe(`markup ${variant} — Lapidary`);
    expect(await page.locator('header h1').innerText()).toBe(`markup ${variant}`);
    const panel = await panelText(page);
    expect(panel).toContain(`variant\t${variant}`);
    expect(panel).toContain(`note\t${JSON.stringify(note)}`);
    expect(panel).toMatch(/d\s+16/); // the variant's override
    await toggle(page, 'model.layers.1');
    await shot(page, 'markup-model');
    expect(await page.evaluate(() => (window as unknown as { __pwned?: unknown }).__pwned)).toBeUndefined();
    expect(await page.title()).not.toBe('pwned');
    expect(await page.locator('img').count()).toBe(0);
    expect(await page.locator('script').count()).toBe(2);
    expect(errors).toEqual([]);
    await page.close();
  });

  test('--serve: the page reloads with its view when the model file changes, and shows errors', async () => {
    const model = path.join(dir, 'live.model');
    fs.copyFileSync(MODEL, model);
    const opts = { variant: '2b', format: 'html', chip: 'v5e', metric: 'flops', port: 0 } as VizOptions;
    const server = await startVizServer({ port: 0, watch: [model], pollMs: 50, build: () => vizOutput(model, opts, true) });
    try {
      const { page, errors } = await open(server.url);
      expect(await collapsedLayers(page)).toBe(26);
      await toggle(page, 'model.layers.3');
      await panTo(page, 'g.group[data-group="model.layers.5"] rect.box');
      await page.locator('g.group[data-group="model.layers.5"] rect.box').click();
      expect(await page.locator('g.group.selected[data-group="model.layers.5"]').count()).toBe(1);
      const first = await page.evaluate(() => window.lapidary!.readyMs + performance.timeOrigin);
      fs.writeFileSync(model, fs.readFileSync(model, 'utf8').replace('n_layers     = 26', 'n_layers     = 24'));
      await page.waitForFunction((t) => window.lapidary && window.lapidary.readyMs + performance.timeOrigin > t, first, { timeout: 15_000 });
      await page.waitForSelector('body[data-ready="1"]');
      expect(await collapsedLayers(page)).toBe(23);
      expect(await page.locator('g.frame[data-group="model.layers.3"]').count()).toBe(1); // still expanded
      expect(await page.locator('g.group.selected[data-group="model.layers.5"]').count()).toBe(1); // still selected, outlined
      expect(await page.locator('#panel-title').innerText()).toBe('model.layers.5');
      // The server serves its page at / and its events; nothing else.
      expect((await page.request.get(new URL('/index.html', server.url).href)).status()).toBe(404);
      fs.writeFileSync(model, fs.readFileSync(model, 'utf8').replace('head_dim     = 256', 'head_dimm    = 256'));
      await page.waitForSelector('#banner.show', { timeout: 15_000 });
      expect(await page.locator('#banner').innerText()).toMatch(/live\.model:\d+:\d+: error: .*head_dimm/);
      await shot(page, 'serve-error');
      expect(errors.filter((e) => !/EventSource|ERR_/.test(e))).toEqual([]);
      await page.close();
    } finally {
      await server.close();
    }
  });
});
