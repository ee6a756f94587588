/** A planning error the user caused (impossible mesh, unknown chip, bad option): the CLI prints it without a stack trace. */
export class TpuError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TpuError';
  }
}
