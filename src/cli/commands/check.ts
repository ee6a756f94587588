import { Command } from 'commander';
import { loadModel, addModelOptions, checkAllVariants, ModelOptions } from '../load';

export function register(program: Command): void {
  addModelOptions(
    program
      .command('check')
      .description(
        'parse and type-check a model file (the defaults and every variant, unless --variant or --config picks one); prints nothing and exits 0 when it is fine, else diagnostics and exit 1',
      )
      .argument('<file>', 'model file'),
  ).action((file: string, opts: ModelOptions) => {
    if (opts.variant !== undefined || opts.config !== undefined) loadModel(file, opts);
    else checkAllVariants(file, opts);
  });
}
