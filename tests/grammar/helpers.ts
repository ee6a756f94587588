import * as fs from 'fs';
import * as path from 'path';
import { compileModel, CompileOptions, formatDiagnostics } from '../../grammar';

export const ROOT = path.join(__dirname, '..', '..');
export const GEMMA2 = fs.readFileSync(path.join(ROOT, 'gemma2.model'), 'utf8');
export const read = (rel: string): string => fs.readFileSync(path.join(ROOT, rel), 'utf8');

/** Compile and fail the test with the printed diagnostics when there is no graph. */
export function build(source: string, file: string, opts: CompileOptions = {}) {
  const r = compileModel(source, file, opts);
  if (!r.graph) throw new Error(`expected a graph, got:\n${formatDiagnostics(r.diagnostics)}`);
  return r.graph;
}

/** Compile expecting errors; returns the diagnostics. */
export function errors(source: string, file = 'm.model', opts: CompileOptions = {}) {
  const r = compileModel(source, file, opts);
  expect(r.graph).toBeUndefined();
  expect(r.diagnostics.length).toBeGreaterThan(0);
  return r.diagnostics;
}

/** A small model around a forward body (prelude blocks available). */
export function model(body: string, extra = ''): string {
  return `model t
hparams { d = 8; n = 2 }
dim batch, seq
${extra}
forward(x: f32[batch, seq, d]) {
${body}
}
`;
}
