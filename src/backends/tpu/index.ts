/** The TPU backend: chips, meshes, the SPMD partitioner, StableHLO/HLO emission and the cost model. */
export * from './chips';
export * from './errors';
export * from './mesh';
export * from './spmd';
export * from './stablehlo';
export * from './hlo';
export * from './partition';
export * from './record';
export * from './program';
export * from './collectives';
export * from './plan';
export * from './emit';
export { Outliner } from './outline';
export type { FunctionPrinter } from './outline';
export * from './report';
export * from './simulate';
export { decodeStep } from './decode';
export type { DecodeStep, KvCacheBuffer } from './decode';
