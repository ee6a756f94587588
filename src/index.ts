/**
 * The package entry (`require('lapidary')` / `import … from 'lapidary'`): the IR, the front end and the pass API.
 */
export * from './ir';
export { compileModel, formatDiagnostic, formatDiagnostics } from '../grammar';
export type { CompileResult, CompileOptions, Diagnostic } from '../grammar';
export * from './passes';
// immer's update functions, so a plugin outside this package can write `produce(graph, draft => …)` with
// `import { produce } from 'lapidary'` (the graphs it receives are immer-frozen).
export { produce, freeze } from 'immer';
