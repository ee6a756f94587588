/**
 * How fast the visualizer opens the full Gemma 2 27B graph in headless Chromium (Debian's, via playwright-core).
 *
 *   npx tsc -p tsconfig.json && node dist/bench/viz-load.js [runs=5]
 *
 * Builds the page with the CLI (all 8 default passes as steps), then per run: a fresh page, navigation to the
 * file until the page is drawn and interactive (body[data-ready]), then expanding one layer and its attention
 * block, then switching to a pass step, then "Expand all" (until drawn, and the longest main-thread task
 * meanwhile: how long the page stops answering input). Also times building the page with the sharding overlay
 * (--mesh). Prints medians as one JSON line.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { chromium } from 'playwright-core';

const ROOT = path.resolve(__dirname, '..', '..');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  const runs = Number(process.argv[2] ?? 5);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lapidary-viz-bench-'));
  const out = path.join(dir, 'g27.html');
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [path.join(ROOT, 'bin/lapidary.js'), 'viz', path.join(ROOT, 'gemma2.model'), '--variant', '27b', '-o', out], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  const buildMs = Date.now() - t0;
  const htmlMb = fs.statSync(out).size / 1e6;
  const outMesh = path.join(dir, 'g27-mesh.html');
  const t1 = Date.now();
  const rm = spawnSync(process.execPath, [path.join(ROOT, 'bin/lapidary.js'), 'viz', path.join(ROOT, 'gemma2.model'), '--variant', '27b', '--batch', '16', '--seq', '4096', '--chip', 'v5p', '--topology', '4x4x4', '--mesh', 'data=16,model=4', '-o', outMesh], { encoding: 'utf8' });
  if (rm.status !== 0) throw new Error(rm.stderr);
  const buildMeshMs = Date.now() - t1;
  const meshMb = fs.statSync(outMesh).size / 1e6;
  const browser = await chromium.launch({
    executablePath: process.env.LAPIDARY_CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const ready: number[] = [];
  const expand: number[] = [];
  const step: number[] = [];
  const expandAll: number[] = [];
  const expandAllLongest: number[] = [];
  const inPage: { parse: number[]; model: number[]; layout: number[]; render: number[] } = { parse: [], model: [], layout: [], render: [] };
  try {
    for (let i = 0; i < runs; i++) {
      const ctx = await browser.newContext({ viewport: { width: 1400, height: 900 } });
      const page = await ctx.newPage();
      const s = Date.now();
      await page.goto('file://' + out);
      await page.waitForSelector('body[data-ready="1"]');
      ready.push(Date.now() - s);
      const t = await page.evaluate(() => window.lapidary!.timings);
      for (const k of ['parse', 'model', 'layout', 'render'] as const) inPage[k].push(t[k] ?? 0);
      const e = await page.evaluate(() => {
        const a = window.lapidary!.app;
        const t1 = performance.now();
        a.expand('model.layers.20');
        a.expand('model.layers.20.self_attn');
        return performance.now() - t1;
      });
      expand.push(e);
      const st = Date.now();
      await page.locator('#steps button[data-step="3"]').click();
      await page.waitForSelector('#steps button[data-step="3"][aria-pressed="true"]');
      step.push(Date.now() - st);
      await page.evaluate(() => {
        const w = window as unknown as { __tasks: number[] };
        w.__tasks = [];
        new PerformanceObserver((l) => l.getEntries().forEach((e) => w.__tasks.push(e.duration))).observe({ type: 'longtask' });
      });
      const ea = Date.now();
      await page.locator('#expand-all').click();
      await page.waitForSelector('g.frame[data-group="model.layers.45.mlp"]', { timeout: 120_000 });
      expandAll.push(Date.now() - ea);
      await page.waitForTimeout(200);
      expandAllLongest.push(await page.evaluate(() => Math.max(0, ...(window as unknown as { __tasks: number[] }).__tasks)));
      await ctx.close();
    }
  } finally {
    await browser.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const round = (x: number) => Math.round(x * 10) / 10;
  console.log(
    JSON.stringify({
      graph: 'gemma2 27b (6370 nodes, 9 pipeline steps)',
      html_mb: round(htmlMb),
      build_page_ms: buildMs,
      build_page_with_mesh_ms: buildMeshMs,
      html_with_mesh_mb: round(meshMb),
      runs,
      open_to_interactive_ms: median(ready),
      open_ms_all: ready,
      in_page_ms: Object.fromEntries(Object.entries(inPage).map(([k, v]) => [k, round(median(v))])),
      expand_layer_and_attention_ms: round(median(expand)),
      switch_pass_step_ms: median(step),
      expand_all_ms: median(expandAll),
      expand_all_longest_task_ms: round(median(expandAllLongest)),
    }),
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
