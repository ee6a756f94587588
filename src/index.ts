/**
 * The package entry (`require('lapidary')` / `import … from 'lapidary'`): the IR, the front end and the pass API.
 */
export * from './ir';
export { compileModel, formatDiagnostic, formatDiagnostics } from '../grammar';
export type { CompileResult, CompileOptions, Diagnostic } from '../grammar';
export * from './passes';
