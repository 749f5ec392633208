// Public API of the config area: load (file or directory) -> validated Config or
// positioned diagnostics; resolve a concrete namespace; render a node's state.
export type { Diagnostic, Severity, FormatOptions } from './diagnostics.js';
export { escapeName, formatDiagnostics, formatPath, hasErrors } from './diagnostics.js';
export type { LoadResult, LoadOptions, ConfigFileInput } from './load.js';
export { loadConfig, parseConfigFiles } from './load.js';
export type { EntrySource, Position, ParseResult } from './parse.js';
export { MAX_ENDPOINTS } from '../core/vocabulary.js';
export { parseConfigText, endpointIdentity, MAX_FILE_BYTES, MAX_ALIASES, MAX_DEPTH, MAX_KEYS_PER_MAPPING } from './parse.js';
export {
  HOST_NETNS,
  resolveNamespace,
  resolveAll,
  checkMerged,
  missingNamespaces,
  entryMatchesNode,
  entryMatchesNetns,
  normalizeEndpoint,
  rpFilterName,
} from './merge.js';
export { renderConfig, renderedConfig } from './render.js';
export { nodeName } from './node.js';
