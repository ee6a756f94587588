import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { GraphBuilder, Graph } from '../../src/ir';
import { initCpuBackend, tf } from '../../src/backends/cpu';
import { CheckpointError, openCheckpoint, readHfConfig, readSafetensorsHeader, writeSafetensors, INDEX_FILE } from '../../src/checkpoint';
import { loadParams } from '../../src/checkpoint/load';
import { UserError } from '../../src/cli/errors';

const TINY = path.join(__dirname, '../fixtures/gemma2-tiny');
let tmp: string;
beforeAll(async () => {
  await initCpuBackend('cpu');
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lapidary-ck-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function graphNeeding(params: Record<string, number[]>): Graph {
  const b = new GraphBuilder('needs');
  const ids = Object.entries(params).map(([n, s]) => b.param(n, { dtype: 'f32', shape: s }));
  return b.build({ outputs: ids.map((id, i) => ({ name: `o${i}`, node: id })) });
}

/** A safetensors file from raw header JSON and data bytes (to make malformed files). */
function rawFile(name: string, header: string | object, data: Buffer = Buffer.alloc(0), lenOverride?: number): string {
  const hb = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(lenOverride ?? hb.length));
  const f = path.join(tmp, name);
  fs.writeFileSync(f, Buffer.concat([len, hb, data]));
  return f;
}

const values = [0.5, -1.25, 3, 0, 1024, -0.0078125]; // exact in f32, bf16 and f16

describe('safetensors', () => {
  test('the tiny HF checkpoint: header, dtypes, config', () => {
    const h = readSafetensorsHeader(path.join(TINY, 'model.safetensors'));
    expect(h.tensors.get('model.embed_tokens.weight')).toMatchObject({ dtype: 'F32', shape: [512, 64] });
    expect(h.tensors.has('lm_head.weight')).toBe(false); // tied: not stored
    expect(h.tensors.size).toBe(1 + 4 * 11 + 1);
    expect(readHfConfig(TINY).num_hidden_layers).toBe(4);
  });

  test.each(['F32', 'BF16', 'F16'] as const)('writes and reads %s (converted to float32)', (dtype) => {
    const f = path.join(tmp, `rt-${dtype}.safetensors`);
    writeSafetensors(f, { 'a.weight': { dtype, shape: [2, 3], data: Float32Array.from(values) }, 'b.bias': { dtype: 'F32', shape: [1], data: Float32Array.of(7) } });
    expect(fs.readdirSync(tmp).some((x) => x.endsWith('.tmp'))).toBe(false);
    const h = readSafetensorsHeader(f);
    expect(h.dataStart % 8).toBe(0);
    const ps = loadParams(graphNeeding({ 'a.weight': [2, 3] }), f);
    expect(ps.size).toBe(1); // only what the graph needs
    expect(Array.from(ps.get('a.weight')!.dataSync())).toEqual(values);
    ps.get('a.weight')!.dispose();
  });

  test('BF16 rounds to nearest even on write; F16 keeps halves', () => {
    const f = path.join(tmp, 'round.safetensors');
    writeSafetensors(f, { x: { dtype: 'BF16', shape: [2], data: Float32Array.of(1 + 2 ** -8, 1 + 3 * 2 ** -8) }, y: { dtype: 'F16', shape: [2], data: Float32Array.of(2 ** -24, 65504) } });
    const ps = loadParams(graphNeeding({ x: [2], y: [2] }), f);
    expect(Array.from(ps.get('x')!.dataSync())).toEqual([1, 1 + 4 * 2 ** -8]);
    expect(Array.from(ps.get('y')!.dataSync())).toEqual([2 ** -24, 65504]);
    ps.forEach((t) => t.dispose());
  });

  test('sharded checkpoints with model.safetensors.index.json; reads only the needed bytes', () => {
    const dir = path.join(tmp, 'sharded');
    fs.mkdirSync(dir);
    const big = new Float32Array(4096).fill(2);
    writeSafetensors(path.join(dir, 'model-00001-of-00002.safetensors'), { a: { dtype: 'F32', shape: [2], data: Float32Array.of(1, 2) }, unused: { dtype: 'F32', shape: [4096], data: big } });
    writeSafetensors(path.join(dir, 'model-00002-of-00002.safetensors'), { b: { dtype: 'BF16', shape: [1, 2], data: Float32Array.of(3, 4) } });
    fs.writeFileSync(path.join(dir, INDEX_FILE), JSON.stringify({ metadata: { total_size: 0 }, weight_map: { a: 'model-00001-of-00002.safetensors', unused: 'model-00001-of-00002.safetensors', b: 'model-00002-of-00002.safetensors' } }));
    const ck = openCheckpoint(dir);
    expect(ck.files).toHaveLength(2);
    // Cut the unneeded tensor's bytes off after the headers were read: loading must not touch them.
    const shard1 = path.join(dir, 'model-00001-of-00002.safetensors');
    fs.truncateSync(shard1, ck.tensors.get('unused')!.begin + 8);
    const ps = loadParams(graphNeeding({ a: [2], b: [1, 2] }), ck);
    expect(() => loadParams(graphNeeding({ unused: [4096] }), ck)).toThrow(/model-00001-of-00002\.safetensors: tensor 'unused': truncated file \(read 8 of 16384 bytes\)/);
    expect(Array.from(ps.get('a')!.dataSync())).toEqual([1, 2]);
    expect(Array.from(ps.get('b')!.dataSync())).toEqual([3, 4]);
    ps.forEach((t) => t.dispose());
  });
});

describe('malformed checkpoints give errors that name the problem', () => {
  const good = () => {
    const f = path.join(tmp, 'good.safetensors');
    writeSafetensors(f, { 'model.layers.0.mlp.up_proj.weight': { dtype: 'F32', shape: [4, 2], data: new Float32Array(8) } });
    return f;
  };
  const err = (fn: () => unknown): CheckpointError => {
    try {
      fn();
    } catch (e) {
      expect(e).toBeInstanceOf(CheckpointError);
      expect(e).toBeInstanceOf(UserError); // printed without a stack trace by the CLI
      return e as CheckpointError;
    }
    throw new Error('expected a CheckpointError');
  };

  test('missing tensor, with the closest name', () => {
    const e = err(() => loadParams(graphNeeding({ 'model.layers.0.mlp.up_proj.weights': [4, 2] }), good()));
    expect(e.message).toMatch(/has no tensor 'model\.layers\.0\.mlp\.up_proj\.weights' \(closest: 'model\.layers\.0\.mlp\.up_proj\.weight'\)/);
  });

  test('wrong shape: expected vs found', () => {
    const e = err(() => loadParams(graphNeeding({ 'model.layers.0.mlp.up_proj.weight': [2, 4] }), good()));
    expect(e.message).toMatch(/tensor 'model\.layers\.0\.mlp\.up_proj\.weight' in .*good\.safetensors: wrong shape: expected \[2, 4\] \(from the model\), found \[4, 2\]/);
  });

  test('truncated file', () => {
    const bytes = fs.readFileSync(good());
    const f = path.join(tmp, 'trunc.safetensors');
    fs.writeFileSync(f, bytes.subarray(0, bytes.length - 5));
    expect(err(() => openCheckpoint(f)).message).toMatch(/trunc\.safetensors: tensor 'model\.layers\.0\.mlp\.up_proj\.weight': data_offsets \[0, 32\] are out of range: the file has 27 data bytes \(the file is truncated\)/);
    fs.writeFileSync(f, bytes.subarray(0, 5));
    expect(err(() => openCheckpoint(f)).message).toMatch(/truncated: 5 bytes/);
    fs.writeFileSync(f, bytes.subarray(0, 20));
    expect(err(() => openCheckpoint(f)).message).toMatch(/truncated: header length \d+ exceeds the 12 bytes after it/);
  });

  test('header not JSON', () => {
    expect(err(() => openCheckpoint(rawFile('nojson.safetensors', '{"a": [1, 2'))).message).toMatch(/nojson\.safetensors: header is not JSON/);
  });

  test('offsets out of range or inconsistent with the shape', () => {
    const data = Buffer.alloc(16);
    expect(err(() => openCheckpoint(rawFile('oob.safetensors', { w: { dtype: 'F32', shape: [8], data_offsets: [0, 32] } }, data))).message).toMatch(
      /oob\.safetensors: tensor 'w': data_offsets \[0, 32\] are out of range: the file has 16 data bytes/,
    );
    expect(err(() => openCheckpoint(rawFile('sz.safetensors', { w: { dtype: 'F32', shape: [3], data_offsets: [0, 16] } }, data))).message).toMatch(
      /tensor 'w': data_offsets \[0, 16\] hold 16 bytes, but F32\[3\] needs 12/,
    );
  });

  test('unsupported dtype', () => {
    expect(err(() => openCheckpoint(rawFile('f8.safetensors', { w: { dtype: 'F8_E4M3', shape: [2], data_offsets: [0, 2] } }, Buffer.alloc(2)))).message).toMatch(
      /f8\.safetensors: tensor 'w': unsupported dtype "F8_E4M3" \(supported: F32, F16, BF16/,
    );
  });

  test('missing shard, missing folder, missing config.json', () => {
    const dir = path.join(tmp, 'badshards');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, INDEX_FILE), JSON.stringify({ weight_map: { a: 'model-00001-of-00002.safetensors' } }));
    expect(err(() => openCheckpoint(dir)).message).toMatch(/shard 'model-00001-of-00002\.safetensors' \(holding 1 tensors, e\.g\. 'a'\) does not exist/);
    expect(err(() => openCheckpoint(path.join(tmp, 'nope'))).message).toMatch(/checkpoint '.*nope' does not exist/);
    expect(err(() => readHfConfig(dir)).message).toMatch(/config\.json: not found/);
  });
});
