/**
 * How fast the visualizer opens the full Gemma 2 27B graph in headless Chromium (Debian's, via playwright-core).
 *
 *   npx tsc -p tsconfig.json && node dist/bench/viz-load.js [runs=5]
 *
 * Builds the page with the CLI (all 8 default passes as steps), then per run: a fresh page, navigation to the
 * file until the page is drawn and interactive (body[data-ready]), then expanding one layer and its attention
 * block, then switching to a pass step. Prints medians as one JSON line.
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
  const browser = await chromium.launch({
    executablePath: process.env.LAPIDARY_CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const ready: number[] = [];
  const expand: number[] = [];
  const step: number[] = [];
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
      runs,
      open_to_interactive_ms: median(ready),
      open_ms_all: ready,
      in_page_ms: Object.fromEntries(Object.entries(inPage).map(([k, v]) => [k, round(median(v))])),
      expand_layer_and_attention_ms: round(median(expand)),
      switch_pass_step_ms: median(step),
    }),
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
