/**
 * Training data and teacher targets on disk.
 *
 * Token files (one stream of token ids; documents simply follow each other):
 *   - `*.json`: a JSON array of ids, or an array of arrays of ids (concatenated in order);
 *   - `*.bin` / `*.u32`: raw little-endian uint32 ids;  `*.u16`: raw little-endian uint16 ids (nanoGPT's format).
 * The stream is cut into consecutive, non-overlapping windows of `seq` tokens (a trailing partial window is
 * dropped). Step s (0-based) trains on windows s·B … s·B + B − 1 modulo the number of windows, so a run is
 * deterministic and resumes exactly from its step count. Labels are the Hugging Face shift inside a window
 * (position t predicts token t + 1; the last position has no label).
 *
 * Teacher targets (`lapidary distill-targets`): a folder with `targets.json` (k, seq, strategy, temperature,
 * the token file's size and FNV-1a hash, number of windows, windows per shard) and shards
 * `targets-00000.safetensors`, … each holding `teacher_ids` I32 [n, seq, K] and `teacher_probs` F32 [n, seq, K]
 * for n consecutive windows. Unused slots (strategy `sample` with repeated draws) have probability 0.
 */
import * as fs from 'fs';
import * as path from 'path';
import { UserError } from '../errors';
import { readSafetensorsHeader, readTensor, writeSafetensors } from '../checkpoint';

export interface TokenStream {
  readonly file: string;
  readonly ids: Int32Array;
  /** FNV-1a of the id stream (to tie targets to their data). */
  readonly hash: string;
}

function fnv1a(ids: Int32Array): string {
  let h = 0x811c9dc5;
  const bytes = new Uint8Array(ids.buffer, ids.byteOffset, ids.byteLength);
  for (let i = 0; i < bytes.length; i++) {
    h ^= bytes[i];
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, '0');
}

export function readTokens(file: string, vocab?: number): TokenStream {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch (e) {
    throw new UserError(`cannot read token file '${file}': ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
  const ext = path.extname(file).toLowerCase();
  let ids: Int32Array;
  if (ext === '.json') {
    let v: unknown;
    try {
      v = JSON.parse(buf.toString('utf8'));
    } catch (e) {
      throw new UserError(`token file '${file}' is not valid JSON: ${(e as Error).message}`);
    }
    const flat = Array.isArray(v) && v.every(Array.isArray) ? (v as unknown[][]).flat() : v;
    if (!Array.isArray(flat)) throw new UserError(`token file '${file}': expected a JSON array of token ids (or an array of arrays)`);
    ids = new Int32Array(flat.length);
    flat.forEach((x, i) => {
      if (!Number.isInteger(x) || (x as number) < 0 || (x as number) > 0x7fffffff) throw new UserError(`token file '${file}': entry ${i} is ${JSON.stringify(x)}, not a token id (a non-negative integer)`);
      ids[i] = x as number;
    });
  } else if (ext === '.bin' || ext === '.u32' || ext === '.u16') {
    const w = ext === '.u16' ? 2 : 4;
    if (buf.length % w) throw new UserError(`token file '${file}': ${buf.length} bytes is not a whole number of ${w * 8}-bit ids`);
    ids = new Int32Array(buf.length / w);
    for (let i = 0; i < ids.length; i++) {
      const x = w === 2 ? buf.readUInt16LE(2 * i) : buf.readUInt32LE(4 * i);
      if (x > 0x7fffffff) throw new UserError(`token file '${file}': id ${x} at position ${i} is too large`);
      ids[i] = x;
    }
  } else {
    throw new UserError(`token file '${file}': unknown format '${ext || '(no extension)'}' (use .json, .bin/.u32 for uint32, .u16 for uint16)`);
  }
  if (vocab !== undefined) {
    for (let i = 0; i < ids.length; i++) {
      if (ids[i] >= vocab) throw new UserError(`token file '${file}': id ${ids[i]} at position ${i} is outside the model's vocabulary (size ${vocab})`);
    }
  }
  return { file, ids, hash: fnv1a(ids) };
}

export function windowCount(s: TokenStream, seq: number): number {
  return Math.floor(s.ids.length / seq);
}

/** Windows [first, first + count) modulo the number of windows, as [count, seq] ids. */
export function windowIds(s: TokenStream, seq: number, first: number, count: number): { ids: Int32Array; windows: number[] } {
  const n = windowCount(s, seq);
  const ids = new Int32Array(count * seq);
  const windows: number[] = [];
  for (let b = 0; b < count; b++) {
    const w = (first + b) % n;
    windows.push(w);
    ids.set(s.ids.subarray(w * seq, (w + 1) * seq), b * seq);
  }
  return { ids, windows };
}

export interface TargetsMeta {
  readonly format: 'lapidary-distill-targets/1';
  readonly k: number;
  readonly seq: number;
  readonly strategy: 'topk' | 'sample';
  readonly temperature: number;
  readonly vocab: number;
  readonly tokens: { readonly file: string; readonly count: number; readonly hash: string };
  readonly windows: number;
  readonly windowsPerShard: number;
  readonly teacher: string;
  /** --seed of `--strategy sample` (checked when a run is resumed). */
  readonly seed?: number;
}

export const TARGETS_META = 'targets.json';
export const shardName = (i: number) => `targets-${String(i).padStart(5, '0')}.safetensors`;

export function readTargetsMeta(dir: string): TargetsMeta {
  const f = path.join(dir, TARGETS_META);
  let m: TargetsMeta;
  try {
    m = JSON.parse(fs.readFileSync(f, 'utf8'));
  } catch (e) {
    throw new UserError(`teacher targets '${dir}': cannot read ${TARGETS_META} (${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file; make targets with `lapidary distill-targets`' : (e as Error).message})`);
  }
  if (m.format !== 'lapidary-distill-targets/1') throw new UserError(`${f}: not a lapidary targets file (format ${JSON.stringify(m.format)})`);
  return m;
}

/** A shard is complete when its header names both tensors with the expected shapes. */
export function shardComplete(dir: string, i: number, n: number, seq: number, k: number): boolean {
  const f = path.join(dir, shardName(i));
  if (!fs.existsSync(f)) return false;
  try {
    const h = readSafetensorsHeader(f);
    const want = [n, seq, k].join();
    return h.tensors.get('teacher_ids')?.shape.join() === want && h.tensors.get('teacher_probs')?.shape.join() === want;
  } catch {
    return false;
  }
}

/**
 * Every shard the targets need, checked before training starts: it exists, its header reads (a truncated file
 * fails here, see `readSafetensorsHeader`), and it holds `teacher_ids` I32 and `teacher_probs` F32 of shape
 * [n, seq, K] for its n windows. A clean error names the shard file (it used to surface at the step reading it).
 */
export function validateTargetShards(dir: string, meta: TargetsMeta): void {
  const per = meta.windowsPerShard;
  if (!Number.isInteger(per) || per < 1 || !Number.isInteger(meta.windows) || meta.windows < 1) {
    throw new UserError(`teacher targets '${dir}': ${TARGETS_META} has windows ${JSON.stringify(meta.windows)}, windowsPerShard ${JSON.stringify(per)}; make targets with \`lapidary distill-targets\``);
  }
  const shards = Math.ceil(meta.windows / per);
  for (let i = 0; i < shards; i++) {
    const f = path.join(dir, shardName(i));
    if (!fs.existsSync(f)) throw new UserError(`teacher targets '${dir}': shard ${shardName(i)} is missing (${shards} shards for ${meta.windows} windows; run distill-targets again to finish it)`);
    const h = readSafetensorsHeader(f);
    const n = Math.min(per, meta.windows - i * per);
    const want = [n, meta.seq, meta.k];
    for (const [name, dtype] of [['teacher_ids', 'I32'], ['teacher_probs', 'F32']] as const) {
      const t = h.tensors.get(name);
      if (!t) throw new UserError(`${f}: no tensor '${name}' (a teacher targets shard holds teacher_ids and teacher_probs); run distill-targets again`);
      if (t.dtype !== dtype || t.shape.join() !== want.join()) {
        throw new UserError(`${f}: '${name}' is ${t.dtype}[${t.shape.join(', ')}], expected ${dtype}[${want.join(', ')}] (windows ${i * per}..${i * per + n - 1} at --seq ${meta.seq}, K ${meta.k}); run distill-targets again`);
      }
    }
  }
}

export function writeShard(dir: string, i: number, ids: Int32Array, probs: Float32Array, n: number, seq: number, k: number): void {
  writeSafetensors(path.join(dir, shardName(i)), {
    teacher_ids: { dtype: 'I32', shape: [n, seq, k], data: ids },
    teacher_probs: { dtype: 'F32', shape: [n, seq, k], data: probs },
  });
}

/** Reads windows of teacher targets, caching one shard. */
export class TargetsReader {
  private cached: { i: number; ids: Int32Array; probs: Float32Array } | undefined;
  constructor(
    readonly dir: string,
    readonly meta: TargetsMeta,
  ) {}

  private shard(i: number) {
    if (this.cached?.i === i) return this.cached;
    const f = path.join(this.dir, shardName(i));
    if (!fs.existsSync(f)) throw new UserError(`teacher targets '${this.dir}': shard ${shardName(i)} is missing (run distill-targets again to finish it)`);
    const h = readSafetensorsHeader(f);
    const ti = h.tensors.get('teacher_ids');
    const tp = h.tensors.get('teacher_probs');
    if (!ti || !tp) throw new UserError(`${f}: needs tensors teacher_ids and teacher_probs`);
    this.cached = { i, ids: Int32Array.from(readTensor(ti)), probs: Float32Array.from(readTensor(tp)) };
    return this.cached;
  }

  /** Targets of the given windows, as [windows.length, seq, K]. */
  read(windows: readonly number[]): { ids: Int32Array; probs: Float32Array } {
    const { seq, k, windowsPerShard: per } = this.meta;
    const row = seq * k;
    const ids = new Int32Array(windows.length * row);
    const probs = new Float32Array(windows.length * row);
    windows.forEach((w, b) => {
      const s = this.shard(Math.floor(w / per));
      const o = (w % per) * row;
      ids.set(s.ids.subarray(o, o + row), b * row);
      probs.set(s.probs.subarray(o, o + row), b * row);
    });
    return { ids, probs };
  }
}
