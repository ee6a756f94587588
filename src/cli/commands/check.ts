import { Command } from 'commander';
import { loadModel, addModelOptions, ModelOptions } from '../load';

export function register(program: Command): void {
  addModelOptions(
    program
      .command('check')
      .description('parse and type-check a model file; prints nothing and exits 0 when it is fine, else diagnostics and exit 1')
      .argument('<file>', 'model file'),
  ).action((file: string, opts: ModelOptions) => {
    loadModel(file, opts);
  });
}
