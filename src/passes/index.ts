/**
 * The pass pipeline's public API: define passes (by hand or as pattern → replacement rules), run pipelines,
 * query graphs. Everything here is re-exported from the package entry (`lapidary`).
 */
export { definePass, isPass } from './types';
export type { Pass, PassContext, TraceEntry } from './types';
export { pat, matchAt, constValue, COMMUTATIVE } from './pattern';
export type { Pattern, Match, GraphView, AttrTest } from './pattern';
export { rule, applyRules, RewriteError } from './rewrite';
export type { Rule, RewriteOptions } from './rewrite';
export { runPipeline, PassError } from './manager';
export type { PassStat, PipelineResult, PipelineOptions } from './manager';
export { BUILTIN_PASSES, DEFAULT_PIPELINE, resolvePipeline, PipelineError } from './pipeline';
export type { PipelineSpec } from './pipeline';
export { loadPlugin, PluginError } from './plugin';
export * as query from './query';
export { findNodes, useCount, scalarOf, ancestors, inScope } from './query';
export { constantFolding, cse, dce, reshapeSimplify, foldNode } from './cleanup';
export { softcapFolding, softcapRules } from './softcap';
export { attentionFusion, attentionRules, attentionPattern } from './attention';
export { slidingWindow, windowRules, maskBand } from './window';
export { gqaHeadSharing, gqaRules, repeatedHeads } from './gqa';
