/** Export of the current view (every expanded group as laid out, not just the part in the window) as SVG or PNG. */
import type { App } from './app';

function fileBase(app: App): string {
  const base = `${app.data.title} step${app.step}`.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '');
  return base || 'graph';
}

/** A standalone SVG document of the laid-out graph, styled like the page. */
export function svgDocument(app: App, css: string): string {
  const pad = 10;
  const w = Math.ceil(app.scene.w + 2 * pad);
  const h = Math.ceil(app.scene.h + 2 * pad);
  const clone = app.svgEl.cloneNode(true) as SVGSVGElement;
  clone.setAttribute('xmlns', 'http://www.w3.org/2000/svg');
  clone.setAttribute('width', String(w));
  clone.setAttribute('height', String(h));
  clone.setAttribute('viewBox', `0 0 ${w} ${h}`);
  clone.removeAttribute('style');
  const vp = clone.querySelector('.viewport');
  if (vp) vp.setAttribute('transform', `translate(${pad},${pad})`);
  const style = document.createElementNS('http://www.w3.org/2000/svg', 'style');
  style.textContent = css + '\n.lv-graph { background: #ffffff; }\n';
  clone.insertBefore(style, clone.firstChild);
  const bg = document.createElementNS('http://www.w3.org/2000/svg', 'rect');
  bg.setAttribute('width', '100%');
  bg.setAttribute('height', '100%');
  bg.setAttribute('fill', '#ffffff');
  clone.insertBefore(bg, vp);
  return new XMLSerializer().serializeToString(clone);
}

function download(blob: Blob, name: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

export function exportSvg(app: App, css: string): void {
  download(new Blob([svgDocument(app, css)], { type: 'image/svg+xml' }), `${fileBase(app)}.svg`);
}

export async function exportPng(app: App, css: string): Promise<void> {
  const text = svgDocument(app, css);
  const w = app.scene.w + 20;
  const h = app.scene.h + 20;
  // Chromium's canvas tops out near 16k px a side and ~268M px in all.
  const scale = Math.max(0.05, Math.min(2, 16000 / w, 16000 / h, Math.sqrt(120e6 / (w * h))));
  const img = new Image();
  const url = URL.createObjectURL(new Blob([text], { type: 'image/svg+xml' }));
  try {
    await new Promise<void>((resolve, reject) => {
      img.onload = () => resolve();
      img.onerror = () => reject(new Error('the SVG could not be rasterised'));
      img.src = url;
    });
    const canvas = document.createElement('canvas');
    canvas.width = Math.ceil(w * scale);
    canvas.height = Math.ceil(h * scale);
    const ctx = canvas.getContext('2d')!;
    ctx.scale(scale, scale);
    ctx.drawImage(img, 0, 0, w, h);
    const blob = await new Promise<Blob | null>((resolve) => canvas.toBlob(resolve, 'image/png'));
    if (!blob) throw new Error('the PNG could not be encoded');
    download(blob, `${fileBase(app)}.png`);
  } catch (e) {
    app.showBanner(`PNG export failed: ${(e as Error).message}`);
  } finally {
    URL.revokeObjectURL(url);
  }
}
