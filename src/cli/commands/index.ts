/** Every CLI command, in the order `--help` lists them. Add a command: one file here and one line below. */
import type { Command } from 'commander';

export type Register = (program: Command) => void;

export const commands: Register[] = [];
