/**
 * User-facing errors, shared by every layer (front end tools, checkpoints, training, the CLI). Anything a user
 * can cause (bad model file, bad checkpoint, impossible mesh, bad option) is a UserError: the CLI prints it as
 * `lapidary: error: …` (or pre-formatted diagnostics) with exit code 1, never with a stack trace. Anything else
 * is a bug and bin/lapidary.js prints it as an internal error. This module imports nothing, so any module may
 * depend on it without depending on the CLI.
 */
export class UserError extends Error {
  constructor(
    message: string,
    /** Already formatted text (e.g. file:line:col diagnostics with carets); printed as is. */
    readonly formatted?: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = 'UserError';
  }
}

export function isUserError(e: unknown): e is UserError {
  return e instanceof UserError;
}
