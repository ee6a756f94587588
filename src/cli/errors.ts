/** The CLI's user errors: defined in src/errors.ts (so non-CLI modules need not import the CLI), re-exported here. */
export { UserError, isUserError } from '../errors';
