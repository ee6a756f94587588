import { getChip, parseTopology, makeMesh, meshMapping, replicaGroups, iotaReplicaGroups, hloSharding, TpuError, defaultTopology, collectiveTime } from '../../src/backends/tpu';

const v5p = getChip('v5p');
const v5e = getChip('v5e');

describe('topologies and meshes', () => {
  test('tori: 3D wraparound needs whole 4x4x4 cubes, 2D only on axes of 16; a leading number counts DCN slices', () => {
    expect(parseTopology(v5p, '8x24x32').axes.map((a) => a.wrap)).toEqual([true, true, true]);
    expect(parseTopology(v5p, '2x4x4').axes.map((a) => a.wrap)).toEqual([false, false, false]);
    expect(parseTopology(v5e, '16x8').axes.map((a) => a.wrap)).toEqual([true, false]);
    const t = parseTopology(v5e, '2x16x16');
    expect(t.slices).toBe(2);
    expect(t.axes[0]).toEqual({ size: 2, wrap: false, dcn: true });
    expect(t.chips).toBe(512);
    expect(defaultTopology(v5p, 64).text).toBe('4x4x4');
  });

  test('impossible topologies and meshes are errors that name the option', () => {
    expect(() => parseTopology(v5e, '4x4x4x4')).toThrow(/--topology 4x4x4x4: a v5e slice is a 2D torus/);
    expect(() => parseTopology(v5e, '32x32')).toThrow(/at most 256 chips/);
    expect(() => parseTopology(v5p, '8xfoo')).toThrow(TpuError);
    const topo = parseTopology(v5p, '8x24x32');
    expect(() => makeMesh(topo, 'data=768,model=4')).toThrow(/--mesh data=768,model=4: the axes multiply to 3072 devices, but the topology has 6144 chips/);
    expect(() => makeMesh(topo, 'data=768,data=8')).toThrow(/given twice/);
    expect(() => makeMesh(topo, 'data:768')).toThrow(/is not NAME=SIZE/);
    expect(() => makeMesh(parseTopology(v5e, '2x16x16'), 'x=1,data=512')).toThrow(/only the first axis may/);
  });

  test('an axis no physical axis divides takes pieces of two (model=6 on 8x24x32: 3 of the 24 and 2 of the 32; model=8 on 4x4x12)', () => {
    const six = makeMesh(parseTopology(v5p, '8x24x32'), 'data=1024,model=6');
    expect(meshMapping(six)).toBe('data→ici0:8(wrap)×ici1:8(no wrap)×ici2:16(no wrap), model→ici1:3(no wrap)×ici2:2(no wrap)');
    const eight = makeMesh(parseTopology(v5p, '4x4x12'), 'data=24,model=8');
    expect(meshMapping(eight)).toBe('data→ici0:4(wrap)×ici1:2(no wrap)×ici2:3(no wrap), model→ici1:2(no wrap)×ici2:4(no wrap)');
    // Every physical axis is used up exactly: the pieces of each multiply to its size.
    for (const m of [six, eight]) {
      const used = m.topology.axes.map(() => 1);
      for (const a of m.axes) for (const p of a.pieces) used[p.phys] *= p.size;
      expect(used).toEqual(m.topology.axes.map((a) => a.size));
    }
  });

  test('logical axes take whole physical axes when they can (keeping wraparound); -1 is the rest', () => {
    const m = makeMesh(parseTopology(v5p, '8x24x32'), 'data=-1,model=8');
    expect(m.axes.map((a) => [a.name, a.size])).toEqual([['data', 768], ['model', 8]]);
    expect(m.axes[1].pieces).toEqual([{ phys: 0, size: 8, wrap: true, dcn: false }]);
    expect(m.axes[0].pieces.map((p) => p.size)).toEqual([24, 32]);
    const e = makeMesh(parseTopology(v5e, '2x16x16'), 'replica=2,data=256');
    expect(e.axes[0].pieces).toEqual([{ phys: 0, size: 2, wrap: false, dcn: true }]);
  });

  test('replica groups, explicit and in iota form, and sharding strings', () => {
    const m = makeMesh(parseTopology(v5e, '2x4'), 'data=2,model=4');
    expect(replicaGroups(m, ['model'])).toEqual([[0, 1, 2, 3], [4, 5, 6, 7]]);
    expect(iotaReplicaGroups(m, ['model'])).toBe('[2,4]<=[8]');
    expect(replicaGroups(m, ['data'])).toEqual([[0, 4], [1, 5], [2, 6], [3, 7]]);
    expect(iotaReplicaGroups(m, ['data'])).toBe('[4,2]<=[2,4]T(1,0)');
    expect(replicaGroups(m, ['data', 'model'])).toEqual([[0, 1, 2, 3, 4, 5, 6, 7]]);
    expect(hloSharding(m, [[], []])).toBe('{replicated}');
    expect(hloSharding(m, [['data'], []])).toBe('{devices=[2,1,4]<=[8] last_tile_dim_replicate}');
    expect(hloSharding(m, [['model'], ['data']])).toBe('{devices=[4,2]<=[2,4]T(1,0)}');
    expect(hloSharding(m, [['model', 'data'], []])).toBe('{devices=[8,1]<=[2,4]T(1,0)}');
  });
});

describe('collective time (torus formulas, FIGURES.md §4)', () => {
  test('all-gather over three wrapped axes of a 4x4x4 v5p cube: V / (W · 3)', () => {
    const m = makeMesh(parseTopology(v5p, '4x4x4'), 'data=64');
    const t = collectiveTime(m, 'all-gather', ['data'], 1e9);
    expect(t.seconds).toBeCloseTo(1e9 / (1.8e11 * 3), 12);
    expect(collectiveTime(m, 'all-reduce', ['data'], 1e9).seconds).toBeCloseTo((2 * 1e9) / (1.8e11 * 3), 12);
    expect(collectiveTime(m, 'all-to-all', ['data'], 1e9).seconds).toBeCloseTo(1e9 / (1.8e11 * 3) / 4, 12);
  });

  test('no wraparound doubles the time; tiny arrays pay hop latency; DCN slices pay per-chip DCN bandwidth', () => {
    const wrapped = makeMesh(parseTopology(v5e, '16x16'), 'data=16,model=16');
    const open = makeMesh(parseTopology(v5e, '8x8'), 'data=8,model=8');
    expect(collectiveTime(open, 'all-gather', ['model'], 9e9).seconds).toBeCloseTo(2 * (9e9 / 9e10), 9);
    expect(collectiveTime(wrapped, 'all-gather', ['model'], 9e9).seconds).toBeCloseTo(9e9 / 9e10, 9);
    expect(collectiveTime(wrapped, 'all-gather', ['model'], 8).seconds).toBeCloseTo(1e-6 * 8, 12);
    const dcn = makeMesh(parseTopology(v5e, '2x16x16'), 'replica=2,data=256');
    expect(collectiveTime(dcn, 'all-gather', ['replica'], 1e9).seconds).toBeCloseTo((1e9 * 0.5) / 3.125e9, 9);
  });
});
