/** The page's entry point: read the embedded data, draw, and in `--serve` mode follow the model file. */
import type { VizData } from '../format';
import { VIZ_FORMAT, VIZ_VERSION } from '../format';
import { App } from './app';

declare global {
  interface Window {
    lapidary?: { app: App; readyMs: number; timings: App['timings'] };
  }
}

const STATE_KEY = 'lapidary-viz-state';

function boot(): void {
  const t0 = performance.now();
  const mount = document.getElementById('app-root')!;
  const script = document.getElementById('lapidary-data');
  let data: VizData;
  try {
    data = JSON.parse(script?.textContent ?? '') as VizData;
    if (data.format !== VIZ_FORMAT || data.version !== VIZ_VERSION) throw new Error(`expected ${VIZ_FORMAT} version ${VIZ_VERSION}`);
  } catch (e) {
    mount.textContent = `This page's graph data could not be read: ${(e as Error).message}`;
    return;
  }
  const parse = performance.now() - t0;
  const app = new App(data, mount);
  let saved;
  try {
    const s = sessionStorage.getItem(STATE_KEY);
    if (s && data.live) saved = JSON.parse(s);
    sessionStorage.removeItem(STATE_KEY);
  } catch {
    saved = undefined;
  }
  app.start(saved);
  app.timings.parse = parse;
  window.lapidary = { app, readyMs: performance.now(), timings: app.timings };
  document.body.setAttribute('data-ready', '1');
  if (data.live) follow(app);
}

/** `lapidary viz --serve`: reload (keeping the view) when the server says the model file changed. */
function follow(app: App): void {
  const es = new EventSource('events');
  es.addEventListener('reload', () => {
    try {
      sessionStorage.setItem(STATE_KEY, JSON.stringify(app.saveState()));
    } catch {
      /* private mode: reload without the state */
    }
    location.reload();
  });
  es.addEventListener('failed', (e) => app.showBanner((e as MessageEvent).data as string));
  es.addEventListener('error', () => app.showBanner(es.readyState === EventSource.CLOSED ? 'lost the connection to lapidary viz --serve' : ''));
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', boot);
else boot();
