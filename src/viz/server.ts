/**
 * `lapidary viz --serve`: serves the page on 127.0.0.1 only, and nothing but the page (`/`) and its event stream
 * (`/events`). It polls the model file (and config) and, when they change, rebuilds the page and tells open pages
 * to reload (keeping their view); a model that no longer compiles shows its diagnostics in the page instead.
 * Requests whose Host is not this loopback address are refused (no DNS rebinding).
 */
import * as fs from 'fs';
import * as http from 'http';
import type { AddressInfo } from 'net';

export interface VizServerOptions {
  /** 0 picks a free port. */
  readonly port: number;
  /** Build the page; throws (with a user-readable message) when the model does not compile. */
  readonly build: () => string;
  /** Files whose changes trigger a rebuild. */
  readonly watch: readonly string[];
  /** Poll interval for the watched files, ms. */
  readonly pollMs?: number;
  readonly log?: (line: string) => void;
}

export interface VizServer {
  readonly url: string;
  readonly port: number;
  /** Rebuild now (as if a watched file changed). */
  rebuild(): void;
  close(): Promise<void>;
}

export class PortInUseError extends Error {}

export const LOOPBACK = '127.0.0.1';

export async function startVizServer(opts: VizServerOptions): Promise<VizServer> {
  let page = opts.build();
  const clients = new Set<http.ServerResponse>();
  const log = opts.log ?? (() => undefined);
  let port = 0;

  const send = (event: string, data: string) => {
    const payload = `event: ${event}\n${data.split('\n').map((l) => `data: ${l}`).join('\n')}\n\n`;
    for (const c of clients) c.write(payload);
  };

  const server = http.createServer((req, res) => {
    const host = req.headers.host ?? '';
    if (host !== `${LOOPBACK}:${port}` && host !== `localhost:${port}`) {
      res.writeHead(403, { 'Content-Type': 'text/plain; charset=utf-8' }).end('forbidden host\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain; charset=utf-8' }).end('method not allowed\n');
      return;
    }
    const path = (req.url ?? '/').split('?')[0];
    const common = { 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff', 'Referrer-Policy': 'no-referrer', 'X-Frame-Options': 'DENY' };
    if (path === '/') {
      res.writeHead(200, { ...common, 'Content-Type': 'text/html; charset=utf-8' });
      res.end(req.method === 'HEAD' ? undefined : page);
      return;
    }
    if (path === '/events') {
      res.writeHead(200, { ...common, 'Content-Type': 'text/event-stream; charset=utf-8', Connection: 'keep-alive' });
      res.write(': lapidary viz\n\n');
      clients.add(res);
      req.on('close', () => clients.delete(res));
      return;
    }
    res.writeHead(404, { ...common, 'Content-Type': 'text/plain; charset=utf-8' }).end('not found\n');
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => reject(e.code === 'EADDRINUSE' ? new PortInUseError(`port ${opts.port} on ${LOOPBACK} is in use (pick another with --port, or --port 0 for any free port)`) : e));
    server.listen(opts.port, LOOPBACK, () => resolve());
  });
  port = (server.address() as AddressInfo).port;

  const rebuild = () => {
    try {
      page = opts.build();
      log('rebuilt the page; reloading open pages');
      send('reload', String(Date.now()));
    } catch (e) {
      const msg = (e as Error & { formatted?: string }).formatted ?? (e as Error).message;
      log(`the model no longer compiles:\n${msg.trimEnd()}`);
      send('failed', msg.trimEnd());
    }
  };

  let timer: NodeJS.Timeout | undefined;
  const onChange = (cur: fs.Stats, prev: fs.Stats) => {
    if (cur.mtimeMs === prev.mtimeMs && cur.size === prev.size) return;
    clearTimeout(timer);
    timer = setTimeout(rebuild, 60);
  };
  for (const f of opts.watch) fs.watchFile(f, { interval: opts.pollMs ?? 300, persistent: true }, onChange);
  // Keep the event streams open through proxies and idle timeouts.
  const ping = setInterval(() => {
    for (const c of clients) c.write(': ping\n\n');
  }, 20_000);

  return {
    url: `http://${LOOPBACK}:${port}/`,
    port,
    rebuild,
    close: () =>
      new Promise<void>((resolve) => {
        clearInterval(ping);
        clearTimeout(timer);
        for (const f of opts.watch) fs.unwatchFile(f, onChange);
        for (const c of clients) c.end();
        clients.clear();
        server.close(() => resolve());
        server.closeAllConnections?.();
      }),
  };
}
