/** Training graphs: autodiff, the distillation-loss pass, AdamW as graph ops, the one-program training step. */
export * from './autodiff';
export * from './loss';
export * from './optimizer';
export * from './step';
export * from './memory';
export * from './dims';
