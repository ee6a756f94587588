/**
 * Gemma 2 graphs for the CPU tests, the benchmark and the training tests — always from gemma2.model through the
 * real front end (compileModel, hyperparameters from the checkpoint's config.json through the model file's
 * `config` mapping), and for the fused form through the default pass pipeline, exactly as `lapidary run`
 * builds them. There is no second definition of the model here.
 */
import * as fs from 'fs';
import * as path from 'path';
import { Graph, NodeId } from '../../src/ir';
import { readHfConfig } from '../../src/checkpoint';
import { compileModel } from '../../grammar';
import { formatDiagnostics } from '../../grammar/diagnostics';
import { runPipeline, resolvePipeline } from '../../src/passes';

export const MODEL_FILE = path.resolve(__dirname, '../../gemma2.model');

export interface ModelOptions {
  /** Run the default pass pipeline (fused_attention with window/groups/softcap). */
  fused?: boolean;
  /** Bind symbolic dims (batch, seq). */
  dims?: Record<string, number>;
}

/** gemma2.model for an HF config (a checkpoint folder, or the config object itself). */
export function gemma2(configOrDir: string | object, { fused = false, dims }: ModelOptions = {}): Graph {
  const config = typeof configOrDir === 'string' ? readHfConfig(configOrDir) : configOrDir;
  const r = compileModel(fs.readFileSync(MODEL_FILE, 'utf8'), MODEL_FILE, { config, dims });
  if (!r.graph) throw new Error(`gemma2.model does not compile:\n${formatDiagnostics(r.diagnostics)}`);
  return fused ? runPipeline(r.graph, resolvePipeline()).graph : r.graph;
}

/** The embedding output (HF's hidden_states[0]): the scaling `mul` that consumes the token gather. */
export function embeddingNode(g: Graph): NodeId {
  const gather = g.nodes.find((n) => n.op === 'gather');
  const mul = gather && g.nodes.find((n) => n.op === 'mul' && n.inputs.includes(gather.id));
  if (!mul) throw new Error(`graph ${g.name}: no embedding gather × scale`);
  return mul.id;
}
