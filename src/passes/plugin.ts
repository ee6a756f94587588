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
import { createRequire } from 'module';
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
      sourcemap: false,
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
  const req = createRequire(abs);
  const mod: { exports: Record<string, unknown> } = { exports: {} };
  const myRequire = (id: string) => (id === 'lapidary' || id.startsWith('lapidary/') ? api : req(id));
  try {
    // eslint-disable-next-line no-new-func
    new Function('module', 'exports', 'require', '__filename', '__dirname', code)(mod, mod.exports, myRequire, abs, path.dirname(abs));
  } catch (e) {
    throw new PluginError(file, `plugin '${file}' threw while loading: ${(e as Error)?.message ?? String(e)}`);
  }
  let exp: unknown = mod.exports.default ?? mod.exports;
  if (typeof exp === 'function' && !isPass(exp)) {
    try {
      exp = (exp as (api: object) => unknown)(api);
    } catch (e) {
      throw new PluginError(file, `plugin '${file}': its default export (api) => … threw: ${(e as Error)?.message ?? String(e)}`);
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
