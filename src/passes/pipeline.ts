/** The built-in passes, the default pipeline, and how --passes / --no-pass / plugins / --pass-after compose it. */
import { Pass } from './types';
import { constantFolding, cse, dce, reshapeSimplify } from './cleanup';
import { softcapFolding } from './softcap';
import { attentionFusion } from './attention';
import { slidingWindow } from './window';
import { gqaHeadSharing } from './gqa';

/** Every built-in pass, in default-pipeline order. */
export const BUILTIN_PASSES: readonly Pass[] = [
  constantFolding,
  softcapFolding,
  attentionFusion,
  slidingWindow,
  gqaHeadSharing,
  reshapeSimplify,
  cse,
  dce,
].map((p) => ({ ...p, origin: 'builtin' }));

export const DEFAULT_PIPELINE: readonly string[] = BUILTIN_PASSES.map((p) => p.name);

export class PipelineError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PipelineError';
  }
}

function closest(name: string, names: readonly string[]): string | undefined {
  const d = (a: string, b: string) => {
    const m = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array(b.length).fill(0)]);
    for (let j = 1; j <= b.length; j++) m[0][j] = j;
    for (let i = 1; i <= a.length; i++)
      for (let j = 1; j <= b.length; j++) m[i][j] = Math.min(m[i - 1][j] + 1, m[i][j - 1] + 1, m[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    return m[a.length][b.length];
  };
  let best: string | undefined;
  let bd = Infinity;
  for (const n of names) {
    const x = d(name, n);
    if (x < bd) [best, bd] = [n, x];
  }
  return bd <= Math.max(2, name.length / 3) ? best : undefined;
}

function unknown(name: string, known: readonly string[], option: string): PipelineError {
  const s = closest(name, known);
  return new PipelineError(`${option}: unknown pass '${name}'${s ? ` (did you mean '${s}'?)` : ''}; passes: ${known.join(', ')}`);
}

export interface PipelineSpec {
  /**
   * Explicit list of pass names (built-in or plugin): exactly these run, in this order (plugin passes only
   * if named; `pluginsAfter` is then an error). Default: the default pipeline with the plugin passes placed.
   */
  readonly passes?: readonly string[];
  /** Names to drop. */
  readonly without?: readonly string[];
  /** Passes from plugins. */
  readonly plugins?: readonly Pass[];
  /** Where plugin passes go in the default pipeline (not with `passes`): after this pass; default: at the end. */
  readonly pluginsAfter?: string;
}

/** Resolve a pipeline from names; errors name the option and suggest the closest pass. */
export function resolvePipeline(spec: PipelineSpec = {}): Pass[] {
  const plugins = spec.plugins ?? [];
  const byName = new Map<string, Pass>();
  for (const p of BUILTIN_PASSES) byName.set(p.name, p);
  for (const p of plugins) {
    if (byName.has(p.name)) {
      const prev = byName.get(p.name)!;
      throw new PipelineError(`pass '${p.name}' from ${p.origin ?? 'a plugin'} has the same name as the ${prev.origin === 'builtin' ? 'built-in pass' : `pass from ${prev.origin}`}; rename it`);
    }
    byName.set(p.name, p);
  }
  const known = [...byName.keys()];
  let list: Pass[];
  if (spec.passes) {
    list = spec.passes.map((n) => {
      const p = byName.get(n);
      if (!p) throw unknown(n, known, '--passes');
      return p;
    });
    // An explicit list is the whole pipeline: plugin passes run only where it names them.
    if (spec.pluginsAfter !== undefined) {
      throw new PipelineError(`--pass-after '${spec.pluginsAfter}' places plugin passes in the default pipeline; with --passes, name the plugin passes in the list where they should run`);
    }
  } else {
    list = insertAfter([...BUILTIN_PASSES], [...plugins], spec.pluginsAfter, known);
  }
  for (const n of spec.without ?? []) {
    if (!byName.has(n)) throw unknown(n, known, '--no-pass');
    list = list.filter((p) => p.name !== n);
  }
  return list;
}

function insertAfter(list: Pass[], extra: Pass[], after: string | undefined, known: readonly string[]): Pass[] {
  if (after === undefined) return [...list, ...extra];
  const i = list.map((p) => p.name).lastIndexOf(after);
  if (i < 0) {
    if (!known.includes(after)) throw unknown(after, known, '--pass-after');
    throw new PipelineError(`--pass-after: pass '${after}' is not in the pipeline (${list.map((p) => p.name).join(', ')})`);
  }
  return [...list.slice(0, i + 1), ...extra, ...list.slice(i + 1)];
}
