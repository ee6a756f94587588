/**
 * The page's client (src/viz/client/*.ts) bundled into one script with esbuild, at run time and memoised:
 * the `viz` command works right after `npm install`, with no separate build step to forget, and the page
 * always matches the sources. Takes ~0.1 s.
 */
import * as fs from 'fs';
import * as path from 'path';

let cached: string | undefined;

/** The repository root (where package.json is), from either src/viz or dist/src/viz. */
export function packageRoot(): string {
  let dir = __dirname;
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json')) && fs.existsSync(path.join(dir, 'src', 'viz', 'client'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`cannot find the visualizer client sources above ${__dirname}`);
    dir = up;
  }
}

export function clientBundle(): string {
  if (cached !== undefined) return cached;
  // Loaded lazily: only `viz` needs esbuild.
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const esbuild = require('esbuild') as typeof import('esbuild');
  const r = esbuild.buildSync({
    entryPoints: [path.join(packageRoot(), 'src', 'viz', 'client', 'main.ts')],
    bundle: true,
    write: false,
    minify: true,
    format: 'iife',
    platform: 'browser',
    target: 'es2020',
    charset: 'ascii',
    legalComments: 'none',
    logLevel: 'silent',
  });
  let js = r.outputFiles[0].text;
  // The script is inlined into HTML: no `</script` (or `<!--`) may appear in it, whatever a string holds.
  js = js.replace(/<\/(script)/gi, '<\\/$1');
  if (/<!--/.test(js)) throw new Error('the client bundle contains `<!--`, which cannot be inlined into HTML safely');
  cached = js;
  return js;
}
