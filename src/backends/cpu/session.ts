/**
 * What the `run` and `generate` commands share: validated token-id input, the tfjs backend option, and a
 * graph + params bound to a checkpoint. Kept out of the CLI so tests and the benchmark use the same code.
 */
import * as fs from 'fs';
import * as path from 'path';
import { Graph } from '../../ir';
import { ExecError } from './index';

/** Vocabulary size: the row count of the table the `input_ids` are gathered from, if the graph has one. */
export function vocabSize(g: Graph): number | undefined {
  const ids = g.nodes.find((n) => n.op === 'input' && n.attrs.name === 'input_ids');
  if (!ids) return undefined;
  const gather = g.nodes.find((n) => n.op === 'gather' && n.inputs[1] === ids.id);
  const table = gather && g.nodes.find((n) => n.id === gather.inputs[0]);
  const v = table?.type.shape[0];
  return typeof v === 'number' ? v : undefined;
}

/** Check a batch of token-id rows: non-empty, equal lengths, integers in [0, vocab). `what` names the source. */
export function checkIdRows(rows: unknown, what: string, vocab?: number): number[][] {
  if (!Array.isArray(rows) || rows.length === 0 || !rows.every(Array.isArray)) {
    throw new ExecError(`${what}: expected a non-empty array of rows of token ids, e.g. [[2, 651, 6037]]`);
  }
  const len = (rows[0] as unknown[]).length;
  if (len === 0) throw new ExecError(`${what}: row 0 is empty`);
  rows.forEach((r: unknown[], i) => {
    if (r.length !== len) throw new ExecError(`${what}: row ${i} has ${r.length} ids but row 0 has ${len} (rows of a batch must have equal length)`);
    r.forEach((v, j) => {
      if (!Number.isInteger(v) || (v as number) < 0) throw new ExecError(`${what}: row ${i}, position ${j}: ${JSON.stringify(v)} is not a token id (a non-negative integer)`);
      if (vocab !== undefined && (v as number) >= vocab) throw new ExecError(`${what}: row ${i}, position ${j}: id ${v} is outside the vocabulary (size ${vocab})`);
    });
  });
  return rows as number[][];
}

/** EOS ids from the checkpoint's generation_config.json, else config.json (a number or a list). */
export function eosIds(dir: string): number[] {
  for (const f of ['generation_config.json', 'config.json']) {
    const p = path.join(fs.existsSync(dir) && fs.statSync(dir).isFile() ? path.dirname(dir) : dir, f);
    if (!fs.existsSync(p)) continue;
    try {
      const e = JSON.parse(fs.readFileSync(p, 'utf8')).eos_token_id;
      if (typeof e === 'number') return [e];
      if (Array.isArray(e)) return e.filter((x) => typeof x === 'number');
    } catch {
      /* a malformed generation config only loses the EOS stop */
    }
  }
  return [];
}

/** Write JSON through a temp file and rename, so an error never leaves a half-written file over the user's. */
export function writeFileAtomic(file: string, write: (fd: number) => void): void {
  const tmp = path.join(path.dirname(path.resolve(file)), `.${path.basename(file)}.${process.pid}.tmp`);
  const fd = fs.openSync(tmp, 'w');
  try {
    write(fd);
    fs.closeSync(fd);
  } catch (e) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  try {
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true }); // never leave the temp file behind (e.g. `file` is a directory)
    throw e;
  }
}

/** Stream `{"logits": [B][T][V]}` row by row (a [4, 128, 256000] result would not fit in one string). */
export function writeLogitsJson(file: string, data: Float32Array, shape: readonly number[]): void {
  const [B, T, V] = shape;
  writeFileAtomic(file, (fd) => {
    fs.writeSync(fd, '{"logits": [');
    for (let b = 0; b < B; b++) {
      fs.writeSync(fd, b ? ', [' : '[');
      for (let t = 0; t < T; t++) {
        const o = (b * T + t) * V;
        fs.writeSync(fd, (t ? ', [' : '[') + Array.from(data.subarray(o, o + V), (x) => (Number.isFinite(x) ? String(x) : 'null')).join(', ') + ']');
      }
      fs.writeSync(fd, ']');
    }
    fs.writeSync(fd, ']}\n');
  });
}
