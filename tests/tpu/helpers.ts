/** Shared by the TPU tests: the tiny Gemma 2 of tests/fixtures (or a config derived from it), after the default passes. */
import * as fs from 'fs';
import * as path from 'path';
import { Graph } from '../../src/ir';
import { compileModel } from '../../grammar';
import { runPipeline, resolvePipeline } from '../../src/passes';

export const ROOT = path.resolve(__dirname, '../..');
export const TINY_CONFIG = JSON.parse(fs.readFileSync(path.join(ROOT, 'tests/fixtures/gemma2-tiny/config.json'), 'utf8'));

export function tinyGemma2(batch: number, seq: number, config: Record<string, unknown> = TINY_CONFIG): Graph {
  const r = compileModel(fs.readFileSync(path.join(ROOT, 'gemma2.model'), 'utf8'), 'gemma2.model', { config, dims: { batch, seq } });
  if (!r.graph) throw new Error(JSON.stringify(r.diagnostics));
  return runPipeline(r.graph, resolvePipeline({})).graph;
}
