/**
 * The `lapidary` command line. The only module that wires the front end, passes and backends together.
 * Each command lives in src/cli/commands/<name>.ts and exports `register(program)`.
 */
import { Command, CommanderError } from 'commander';
import { UserError } from './errors';
import { commands } from './commands';

export function buildProgram(): Command {
  const program = new Command('lapidary')
    .description('A declarative model compiler: model files → typed graph IR → passes → CPU (tfjs) and TPU (StableHLO/HLO) backends.')
    .version(require('../../../package.json').version)
    .showHelpAfterError('(run with --help for usage)')
    // commander's own errors (a missing required option, an unknown one) carry the same prefix as ours.
    .configureOutput({ outputError: (str, write) => write(str.startsWith('error:') ? `lapidary: ${str}` : str) })
    .exitOverride();
  for (const register of commands) register(program);
  for (const c of program.commands) c.exitOverride();
  return program;
}

/** Runs the CLI; resolves to the process exit code. */
export async function main(argv: string[]): Promise<number> {
  quietWhenStdoutCloses();
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // commander already printed the message (or help/version, which exit 0)
      return e.exitCode;
    }
    if (e instanceof UserError) {
      process.stderr.write(e.formatted ?? `lapidary: error: ${e.message}\n`);
      return e.exitCode;
    }
    throw e;
  }
}

let stdoutGuarded = false;
/** `lapidary ir model | head`: the reader closing the pipe ends the run quietly, not with an EPIPE stack trace. */
function quietWhenStdoutCloses(): void {
  if (stdoutGuarded) return;
  stdoutGuarded = true;
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    process.stderr.write(`lapidary: error: cannot write the output: ${e.message}\n`);
    process.exit(1);
  });
}
