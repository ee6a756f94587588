import { Command } from 'commander';
import { Graph, countOps, countParams } from '../../ir';
import { loadModel, addModelOptions, ModelOptions } from '../load';

const fmt = (n: number) => n.toLocaleString('en-US');

/**
 * Layers: the longest run of labelled calls `prefix.0`, `prefix.1`, … (`model.layers.N`, `transformer.h.N`),
 * whatever the model calls its layer-count hyperparameter; `n_layers` when there are none (0 layers).
 */
export function layerCount(g: Graph): number | undefined {
  const groups = new Map<string, Set<string>>();
  for (const scope of Object.keys(g.taps)) {
    const m = /^(.*)\.(\d+)$/.exec(scope);
    if (!m || /(^|\.)\d+(\.|$)/.test(m[1])) continue; // only the outermost repetition
    groups.set(m[1], (groups.get(m[1]) ?? new Set()).add(m[2]));
  }
  const best = Math.max(0, ...[...groups.values()].map((s) => s.size));
  if (best > 0) return best;
  for (const k of ['n_layers', 'num_layers', 'num_hidden_layers', 'n_layer', 'layers']) if (typeof g.hparams[k] === 'number') return g.hparams[k] as number;
  return undefined;
}

export function register(program: Command): void {
  addModelOptions(
    program
      .command('stats')
      .description('parameter count (total and embedding), layers and node count per op')
      .argument('<file>', 'model file')
      .option('--json', 'print one JSON object'),
  ).action((file: string, opts: ModelOptions & { json?: boolean }) => {
    const t0 = performance.now();
    const g = loadModel(file, opts);
    const build_ms = performance.now() - t0;
    const p = countParams(g);
    const ops = countOps(g);
    const layers = layerCount(g);
    if (opts.json) {
      const out = {
        model: g.name,
        variant: g.variant ?? null,
        params: p.params,
        embedding_params: p.embedding_params,
        non_embedding_params: p.params - p.embedding_params,
        param_tensors: p.tensors,
        layers: layers ?? null,
        nodes: g.nodes.length,
        ops,
        hparams: g.hparams,
        build_ms: Math.round(build_ms * 10) / 10,
      };
      process.stdout.write(JSON.stringify(out) + '\n');
      return;
    }
    const lines = [
      `model       ${g.name}${g.variant ? ` (variant ${g.variant})` : ''}`,
      `params      ${fmt(p.params)}  (embedding ${fmt(p.embedding_params)}, non-embedding ${fmt(p.params - p.embedding_params)}, ${p.tensors} tensors)`,
      ...(layers !== undefined ? [`layers      ${layers}`] : []),
      `nodes       ${fmt(g.nodes.length)}  (built in ${build_ms.toFixed(1)} ms)`,
      'ops',
      ...Object.entries(ops).map(([op, c]) => `  ${op.padEnd(14)} ${c}`),
    ];
    process.stdout.write(lines.join('\n') + '\n');
  });
}
