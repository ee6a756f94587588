/** Every CLI command, in the order `--help` lists them. Add a command: one file here and one line below. */
import type { Command } from 'commander';
import * as check from './check';
import * as stats from './stats';
import * as ir from './ir';
import * as run from './run';
import * as generate from './generate';
import * as train from './train';
import * as distillTargets from './distill-targets';
import * as compile from './compile';
import * as viz from './viz';
import * as cost from './cost';

export type Register = (program: Command) => void;

export const commands: Register[] = [check.register, stats.register, ir.register, compile.register, run.register, generate.register, distillTargets.register, train.register, cost.register, viz.register];
