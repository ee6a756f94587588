/**
 * The Gemma 2 graph for a checkpoint folder at concrete dims, from gemma2.model through the front end.
 * `fused: true` runs the default pass pipeline (fused_attention), as the CPU tests do (tests/cpu/model.ts).
 */
import * as fs from 'fs';
import * as path from 'path';
import { Graph } from '../../src/ir';
import { readHfConfig } from '../../src/checkpoint';
import { compileModel } from '../../grammar';
import { specializeDims } from '../../src/train';
import { gemma2 } from '../cpu/model';

export const MODEL_FILE = path.join(__dirname, '../../gemma2.model');

export function modelGraph(dir: string, { batch, seq, fused = false }: { batch: number; seq: number; fused?: boolean }): Graph {
  const config = readHfConfig(dir);
  if (fused) return specializeDims(gemma2(config, { fused }), { batch, seq });
  const r = compileModel(fs.readFileSync(MODEL_FILE, 'utf8'), MODEL_FILE, { config, dims: { batch, seq } });
  if (!r.graph) throw new Error(`gemma2.model does not compile: ${JSON.stringify(r.diagnostics.slice(0, 2))}`);
  return r.graph;
}
