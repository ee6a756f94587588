/**
 * The self-contained page: CSS, the bundled client and the graph data inlined into one HTML file that opens
 * from disk with no network (a Content-Security-Policy forbids every fetch but the `--serve` event stream).
 */
import type { VizData } from './format';
import { clientBundle } from './bundle';
import { PAGE_CSS, GRAPH_CSS } from './client/style';

/** Escape text for HTML element content or a double-quoted attribute. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/**
 * JSON for a `<script type="application/json">` element: `<`, `>` and `&` as \u escapes, so no string in the
 * data (`</script>`, `<!--`) can end the element; U+2028/2029 escaped for good measure. JSON.parse reads it back unchanged.
 */
export function jsonForScript(data: unknown): string {
  return JSON.stringify(data).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export function renderHtml(data: VizData): string {
  const csp = [
    "default-src 'none'",
    "script-src 'unsafe-inline'",
    "style-src 'unsafe-inline'",
    'img-src data: blob:',
    data.live ? "connect-src 'self'" : "connect-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
  ].join('; ');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${escapeHtml(csp)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="lapidary viz">
<title>${escapeHtml(data.title)} — Lapidary</title>
<style>${PAGE_CSS}${GRAPH_CSS}</style>
</head>
<body>
<div id="app-root">Loading the graph…</div>
<noscript>The Lapidary visualizer needs JavaScript.</noscript>
<script type="application/json" id="lapidary-data">${jsonForScript(data)}</script>
<script>${clientBundle()}</script>
</body>
</html>
`;
}
