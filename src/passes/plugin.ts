/**
 * Loading user passes from a file. A plugin is an ES module or CommonJS file, JavaScript or TypeScript
 * (compiled on the fly with esbuild), that default-exports one of
 *
 *   export default (api) => api.definePass({ name, description, run })      // a factory: gets the API
 *   export default definePass({...})                                          // a pass (import from 'lapidary')
 *   export default [passA, passB]                                              // several passes (or a factory returning them)
 *
 * `import … from 'lapidary'` inside a plugin resolves to the running compiler itself (the same op registry),
 * wherever the plugin file lives. The file is read, never written.
 */
import * as fs from 'fs';
import * as path from 'path';
import { SourceMap, createRequire } from 'module';
import { pathToFileURL } from 'url';
import { Pass, definePass, isPass } from './types';

export class PluginError extends Error {
  constructor(
    readonly file: string,
    message: string,
  ) {
    super(message);
    this.name = 'PluginError';
  }
}

const EXTS = new Set(['.js', '.mjs', '.cjs', '.ts', '.mts', '.cts']);

/** Load the passes a plugin file exports; `api` is what `lapidary` means inside it. */
export function loadPlugin(file: string, api: object): Pass[] {
  const abs = path.resolve(file);
  let st: fs.Stats;
  try {
    st = fs.statSync(abs);
  } catch {
    throw new PluginError(file, `plugin '${file}': no such file`);
  }
  if (!st.isFile()) throw new PluginError(file, `plugin '${file}' is not a file`);
  const ext = path.extname(abs);
  if (!EXTS.has(ext)) throw new PluginError(file, `plugin '${file}': expected a .js, .mjs, .cjs or .ts file`);
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const esbuild = require('esbuild') as typeof import('esbuild');
  let code: string;
  try {
    const r = esbuild.buildSync({
      entryPoints: [abs],
      bundle: true,
      format: 'cjs',
      platform: 'node',
      target: 'node20',
      write: false,
      external: ['lapidary', 'lapidary/*'],
      packages: 'external',
      logLevel: 'silent',
      // Inline, so a plugin's runtime error can be located in its own source (`locatePluginError`).
      sourcemap: 'inline',
      // The bundle runs as CommonJS, where import.meta is empty: give ES-module plugins their own location
      // (fileURLToPath(import.meta.url) to find files next to the plugin).
      define: {
        'import.meta.url': JSON.stringify(pathToFileURL(abs).href),
        'import.meta.filename': JSON.stringify(abs),
        'import.meta.dirname': JSON.stringify(path.dirname(abs)),
      },
    });
    code = r.outputFiles[0].text;
  } catch (e) {
    const errs = (e as { errors?: { text: string; location?: { file: string; line: number; column: number } | null }[] }).errors;
    const msg = errs?.length
      ? errs.map((x) => (x.location ? `${x.location.file}:${x.location.line}:${x.location.column + 1}: error: ${x.text}` : x.text)).join('\n')
      : (e as Error).message;
    throw new PluginError(file, `plugin '${file}' does not compile:\n${msg}`);
  }
  const bundleUrl = `${pathToFileURL(abs).href}#lapidary-plugin-bundle`;
  const inline = /\/\/# sourceMappingURL=data:application\/json;base64,([A-Za-z0-9+/=]+)\s*$/.exec(code);
  if (inline) {
    try {
      BUNDLES.set(bundleUrl, { file, map: new SourceMap(JSON.parse(Buffer.from(inline[1], 'base64').toString('utf8'))) });
    } catch {
      // No map: errors are reported without a location.
    }
    code = code.slice(0, inline.index);
  }
  code += `\n//# sourceURL=${bundleUrl}\n`;
  const req = createRequire(abs);
  const mod: { exports: Record<string, unknown> } = { exports: {} };
  const myRequire = (id: string) => (id === 'lapidary' || id.startsWith('lapidary/') ? api : req(id));
  try {
    // eslint-disable-next-line no-new-func
    new Function('module', 'exports', 'require', '__filename', '__dirname', code)(mod, mod.exports, myRequire, abs, path.dirname(abs));
  } catch (e) {
    throw new PluginError(file, `plugin '${file}' threw while loading${at(e)}: ${(e as Error)?.message ?? String(e)}`);
  }
  let exp: unknown = mod.exports.default ?? mod.exports;
  if (typeof exp === 'function' && !isPass(exp)) {
    try {
      exp = (exp as (api: object) => unknown)(api);
    } catch (e) {
      throw new PluginError(file, `plugin '${file}': its default export (api) => … threw${at(e)}: ${(e as Error)?.message ?? String(e)}`);
    }
  }
  const list = Array.isArray(exp) ? exp : [exp];
  if (!list.length || !list.every(isPass)) {
    throw new PluginError(file, `plugin '${file}' must default-export a pass made with definePass, an array of passes, or a function (api) => pass(es)`);
  }
  return (list as Pass[]).map((p) => {
    try {
      const checked = definePass({ name: p.name, description: p.description, run: p.run.bind(p) });
      return { ...checked, origin: file } as Pass;
    } catch (e) {
      throw new PluginError(file, `plugin '${file}': ${(e as Error).message}`);
    }
  });
}

const FUNCTION_HEADER_LINES = 2;

/** Loaded plugin bundles by their sourceURL: the plugin file as given, and the bundle's source map. */
const BUNDLES = new Map<string, { file: string; map: SourceMap }>();

/**
 * Where in a plugin's own source an error was thrown (`my-pass.ts:12:7`), from the innermost stack frame in a
 * plugin bundle mapped back through its source map; undefined when the error did not come from a plugin.
 */
export function locatePluginError(e: unknown): string | undefined {
  const stack = (e as Error)?.stack;
  if (typeof stack !== 'string' || !BUNDLES.size) return undefined;
  for (const m of stack.matchAll(/(file:\/\/[^\s()]*#lapidary-plugin-bundle):(\d+):(\d+)/g)) {
    const b = BUNDLES.get(m[1]);
    if (!b) continue;
    // The Function constructor puts `function anonymous(…\n) {\n` before the bundle: two lines.
    const entry = b.map.findEntry(Number(m[2]) - 1 - FUNCTION_HEADER_LINES, Number(m[3]) - 1) as { originalSource?: string; originalLine?: number; originalColumn?: number };
    if (entry?.originalLine === undefined) return b.file;
    return `${b.file}:${entry.originalLine + 1}:${(entry.originalColumn ?? 0) + 1}`;
  }
  return undefined;
}

const at = (e: unknown) => {
  const where = locatePluginError(e);
  return where ? ` at ${where}` : '';
};
