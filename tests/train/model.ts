/**
 * The Gemma 2 graph for a checkpoint folder at concrete dims, from gemma2.model through the front end.
 * `fused: true` uses the CPU tests' hand-built graph with `fused_attention` (what the passes produce).
 */
import * as fs from 'fs';
import * as path from 'path';
import { Graph } from '../../src/ir';
import { readHfConfig } from '../../src/checkpoint';
import { compileModel } from '../../grammar';
import { specializeDims } from '../../src/train';
import { gemma2Graph, Gemma2Config } from '../cpu/gemma2-graph';

export const MODEL_FILE = path.join(__dirname, '../../gemma2.model');

export function modelGraph(dir: string, { batch, seq, fused = false }: { batch: number; seq: number; fused?: boolean }): Graph {
  const config = readHfConfig(dir);
  if (fused) return specializeDims(gemma2Graph(config as unknown as Gemma2Config, { fused }).graph, { batch, seq });
  const r = compileModel(fs.readFileSync(MODEL_FILE, 'utf8'), MODEL_FILE, { config, dims: { batch, seq } });
  if (!r.graph) throw new Error(`gemma2.model does not compile: ${JSON.stringify(r.diagnostics.slice(0, 2))}`);
  return r.graph;
}
