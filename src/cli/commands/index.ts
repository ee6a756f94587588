/** Every CLI command, in the order `--help` lists them. Add a command: one file here and one line below. */
import type { Command } from 'commander';
import * as train from './train';
import * as distillTargets from './distill-targets';
import * as check from './check';
import * as stats from './stats';
import * as ir from './ir';
import * as compile from './compile';
import * as cost from './cost';
import * as viz from './viz';

export type Register = (program: Command) => void;

export const commands: Register[] = [check.register, stats.register, ir.register, compile.register, distillTargets.register, train.register, viz.register, cost.register];
