import { Command } from 'commander';
import { graphToJSONText, printGraph } from '../../ir';
import { loadModel, addModelOptions, ModelOptions } from '../load';

export function register(program: Command): void {
  addModelOptions(
    program
      .command('ir')
      .description('print the IR of a model as text (default) or JSON (round-trips through the IR reader)')
      .argument('<file>', 'model file')
      .option('--json', 'print the IR as JSON'),
  ).action((file: string, opts: ModelOptions & { json?: boolean }) => {
    const g = loadModel(file, opts);
    process.stdout.write(opts.json ? graphToJSONText(g) + '\n' : printGraph(g));
  });
}
