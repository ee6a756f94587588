/** The IR: types, the op registry (all ops registered on import), builder, verifier, printer, JSON. */
import './ops/index';
export * from './types';
export * from './shape';
export * from './op';
export * from './xla';
export * from './builder';
export * from './graph';
export * from './verify';
export * from './print';
export * from './json';
export * from './params';
export * from './cost';
