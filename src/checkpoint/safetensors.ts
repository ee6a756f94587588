/**
 * safetensors: an 8-byte little-endian header length N, N bytes of JSON
 * (`{"__metadata__": {..}, name: {dtype, shape, data_offsets: [begin, end]}}`), then the data, offsets relative
 * to the end of the header, row-major, little-endian. Headers are validated in full before any data is read,
 * so every error names the file and the tensor.
 */
import * as fs from 'fs';
import * as path from 'path';
import { UserError } from '../errors';

/** A problem with a checkpoint the user supplied (printed without a stack trace by the CLI). */
export class CheckpointError extends UserError {
  constructor(message: string) {
    super(message);
    this.name = 'CheckpointError';
  }
}

export type StDType = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';
const SIZE: Record<StDType, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };
/** dtypes this project reads (floats become float32, integers int32). */
export const READABLE: readonly StDType[] = ['F32', 'F16', 'BF16', 'F64', 'I32', 'I64', 'I16', 'I8', 'U8', 'BOOL'];

export interface TensorInfo {
  readonly name: string;
  readonly dtype: StDType;
  readonly shape: readonly number[];
  /** Absolute byte range in the file. */
  readonly begin: number;
  readonly end: number;
  readonly file: string;
}

export interface SafetensorsHeader {
  readonly file: string;
  readonly headerBytes: number;
  readonly dataStart: number;
  readonly metadata: Record<string, string>;
  readonly tensors: ReadonlyMap<string, TensorInfo>;
}

const MAX_HEADER = 100 * 1024 * 1024;

/** Read and validate the header of one .safetensors file (reads only the header bytes). */
export function readSafetensorsHeader(file: string): SafetensorsHeader {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (e) {
    throw new CheckpointError(`${file}: cannot open (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  try {
    const size = fs.fstatSync(fd).size;
    if (size < 8) throw new CheckpointError(`${file}: truncated: ${size} bytes, shorter than the 8-byte header length`);
    const lenBuf = Buffer.alloc(8);
    fs.readSync(fd, lenBuf, 0, 8, 0);
    const n = Number(lenBuf.readBigUInt64LE(0));
    if (n > size - 8) throw new CheckpointError(`${file}: truncated: header length ${n} exceeds the ${size - 8} bytes after it`);
    if (n > MAX_HEADER) throw new CheckpointError(`${file}: header length ${n} is implausibly large (not a safetensors file?)`);
    const hb = Buffer.alloc(n);
    fs.readSync(fd, hb, 0, n, 8);
    let json: unknown;
    try {
      json = JSON.parse(hb.toString('utf8'));
    } catch (e) {
      throw new CheckpointError(`${file}: header is not JSON (${(e as Error).message}); not a safetensors file?`);
    }
    if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new CheckpointError(`${file}: header is not a JSON object`);
    const dataStart = 8 + n;
    const dataLen = size - dataStart;
    const tensors = new Map<string, TensorInfo>();
    let metadata: Record<string, string> = {};
    for (const [name, v] of Object.entries(json as Record<string, unknown>)) {
      if (name === '__metadata__') {
        metadata = (v ?? {}) as Record<string, string>;
        continue;
      }
      const e = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
      const where = `${file}: tensor '${name}'`;
      if (typeof e !== 'object' || e === null) throw new CheckpointError(`${where}: entry is not an object`);
      if (typeof e.dtype !== 'string' || !(e.dtype in SIZE)) {
        throw new CheckpointError(`${where}: unsupported dtype ${JSON.stringify(e.dtype)} (supported: ${READABLE.join(', ')})`);
      }
      const dtype = e.dtype as StDType;
      if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isInteger(d) && d >= 0)) throw new CheckpointError(`${where}: bad shape ${JSON.stringify(e.shape)}`);
      const off = e.data_offsets;
      if (!Array.isArray(off) || off.length !== 2 || !off.every((d) => Number.isInteger(d) && d >= 0)) {
        throw new CheckpointError(`${where}: bad data_offsets ${JSON.stringify(off)}`);
      }
      const [b, en] = off as number[];
      const shape = e.shape as number[];
      const want = shape.reduce((a, d) => a * d, 1) * SIZE[dtype];
      if (en < b) throw new CheckpointError(`${where}: data_offsets [${b}, ${en}] end before they begin`);
      if (en - b !== want) throw new CheckpointError(`${where}: data_offsets [${b}, ${en}] hold ${en - b} bytes, but ${dtype}[${shape.join(', ')}] needs ${want}`);
      if (en > dataLen) {
        throw new CheckpointError(
          `${where}: data_offsets [${b}, ${en}] are out of range: the file has ${dataLen} data bytes` + (size < dataStart + maxEnd(json) ? ' (the file is truncated)' : ''),
        );
      }
      tensors.set(name, { name, dtype, shape, begin: dataStart + b, end: dataStart + en, file });
    }
    return { file, headerBytes: n, dataStart, metadata, tensors };
  } finally {
    fs.closeSync(fd);
  }
}

function maxEnd(json: object): number {
  let m = 0;
  for (const [k, v] of Object.entries(json)) {
    const off = (v as { data_offsets?: unknown })?.data_offsets;
    if (k !== '__metadata__' && Array.isArray(off) && typeof off[1] === 'number') m = Math.max(m, off[1]);
  }
  return m;
}

let f16Table: Float32Array | undefined;
function f16ToF32Table(): Float32Array {
  if (f16Table) return f16Table;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const s = h & 0x8000 ? -1 : 1;
    const e = (h >> 10) & 0x1f;
    const m = h & 0x3ff;
    t[h] = e === 0 ? s * m * 2 ** -24 : e === 31 ? (m ? NaN : s * Infinity) : s * (1 + m / 1024) * 2 ** (e - 15);
  }
  return (f16Table = t);
}

/** Decode raw little-endian bytes into float32 (floats) or int32 (integers, bool). */
export function decodeTensor(info: TensorInfo, bytes: Buffer): Float32Array | Int32Array {
  const n = bytes.length / SIZE[info.dtype];
  // Copy into a fresh, aligned buffer.
  const ab = new ArrayBuffer(bytes.length);
  new Uint8Array(ab).set(bytes);
  switch (info.dtype) {
    case 'F32':
      return new Float32Array(ab);
    case 'BF16': {
      const src = new Uint16Array(ab);
      const out = new Float32Array(n);
      const u = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) u[i] = src[i] << 16;
      return out;
    }
    case 'F16': {
      const src = new Uint16Array(ab);
      const tab = f16ToF32Table();
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = tab[src[i]];
      return out;
    }
    case 'F64':
      return Float32Array.from(new Float64Array(ab));
    case 'I32':
      return new Int32Array(ab);
    case 'I64': {
      const src = new BigInt64Array(ab);
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        const v = src[i];
        if (v > 2147483647n || v < -2147483648n) throw new CheckpointError(`${info.file}: tensor '${info.name}': I64 value ${v} does not fit in int32`);
        out[i] = Number(v);
      }
      return out;
    }
    case 'I16':
      return Int32Array.from(new Int16Array(ab));
    case 'I8':
      return Int32Array.from(new Int8Array(ab));
    case 'U8':
    case 'BOOL':
      return Int32Array.from(new Uint8Array(ab));
  }
}

export const isFloatDType = (d: StDType) => d === 'F32' || d === 'F16' || d === 'BF16' || d === 'F64';

/** Read one tensor's bytes (only its range) and decode it. */
export function readTensor(info: TensorInfo, fd?: number): Float32Array | Int32Array {
  const own = fd === undefined;
  const f = own ? fs.openSync(info.file, 'r') : fd;
  try {
    const len = info.end - info.begin;
    const buf = Buffer.allocUnsafe(len);
    let got = 0;
    while (got < len) {
      const k = fs.readSync(f, buf, got, Math.min(len - got, 1 << 30), info.begin + got);
      if (k === 0) throw new CheckpointError(`${info.file}: tensor '${info.name}': truncated file (read ${got} of ${len} bytes)`);
      got += k;
    }
    return decodeTensor(info, buf);
  } finally {
    if (own) fs.closeSync(f);
  }
}

export interface TensorData {
  readonly dtype: 'F32' | 'I32' | 'BF16' | 'F16';
  readonly shape: readonly number[];
  /** Float32Array for F32 (and BF16/F16, which are rounded on write), Int32Array for I32. */
  readonly data: Float32Array | Int32Array;
}

function f32ToBf16(x: Float32Array): Uint16Array {
  const u = new Uint32Array(x.buffer, x.byteOffset, x.length);
  const out = new Uint16Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const v = u[i];
    if ((v & 0x7f800000) === 0x7f800000 && v & 0x7fffff) out[i] = (v >>> 16) | 0x40; // NaN stays NaN
    else out[i] = (v + 0x7fff + ((v >>> 16) & 1)) >>> 16; // round to nearest even
  }
  return out;
}

function f32ToF16(x: Float32Array): Uint16Array {
  const out = new Uint16Array(x.length);
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  for (let i = 0; i < x.length; i++) {
    f[0] = x[i];
    const b = u[0];
    const s = (b >>> 16) & 0x8000;
    const e = (b >>> 23) & 0xff;
    let m = b & 0x7fffff;
    if (e === 0xff) out[i] = s | 0x7c00 | (m ? 0x200 : 0);
    else {
      const ne = e - 127 + 15;
      if (ne >= 31) out[i] = s | 0x7c00;
      else if (ne <= 0) {
        if (ne < -10) out[i] = s;
        else {
          m |= 0x800000;
          const shift = 14 - ne;
          let h = m >>> shift;
          const rem = m & ((1 << shift) - 1);
          const half = 1 << (shift - 1);
          if (rem > half || (rem === half && h & 1)) h++;
          out[i] = s | h;
        }
      } else {
        let h = (ne << 10) | (m >>> 13);
        const rem = m & 0x1fff;
        if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++;
        out[i] = s | h;
      }
    }
  }
  return out;
}

/**
 * Write a safetensors file atomically (temp file in the same folder, then rename), so a crash never leaves a
 * half-written checkpoint where a good one was. Tensors are written in name order, the header padded to 8 bytes.
 */
export function writeSafetensors(file: string, tensors: Record<string, TensorData> | ReadonlyMap<string, TensorData>, metadata: Record<string, string> = {}): void {
  const entries: [string, TensorData][] = [...(tensors instanceof Map ? tensors.entries() : Object.entries(tensors))].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  const blobs: Uint8Array[] = [];
  let off = 0;
  for (const [name, t] of entries) {
    const numel = t.shape.reduce((a, d) => a * d, 1);
    if (t.data.length !== numel) throw new Error(`writeSafetensors: tensor '${name}' has ${t.data.length} values for shape [${t.shape.join(', ')}]`);
    let bytes: Uint8Array;
    if (t.dtype === 'BF16') bytes = new Uint8Array(f32ToBf16(Float32Array.from(t.data)).buffer);
    else if (t.dtype === 'F16') bytes = new Uint8Array(f32ToF16(Float32Array.from(t.data)).buffer);
    else if (t.dtype === 'I32') bytes = new Uint8Array(Int32Array.from(t.data).buffer);
    else bytes = new Uint8Array(t.data instanceof Float32Array ? t.data.buffer.slice(t.data.byteOffset, t.data.byteOffset + t.data.byteLength) : Float32Array.from(t.data).buffer);
    header[name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [off, off + bytes.length] };
    blobs.push(bytes);
    off += bytes.length;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const hb = Buffer.from(json, 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(hb.length));
  const dir = path.dirname(path.resolve(file));
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${Date.now()}.tmp`);
  const fd = fs.openSync(tmp, 'w');
  try {
    fs.writeSync(fd, len);
    fs.writeSync(fd, hb);
    for (const b of blobs) fs.writeSync(fd, b);
    fs.fsyncSync(fd);
  } catch (e) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fs.closeSync(fd);
  fs.renameSync(tmp, file);
}
