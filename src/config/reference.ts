// Generated artefacts of the zod schema: the JSON Schema editors use
// (schemas/mptcp-reconciler.schema.json) and the key reference
// (docs/config-reference.md). A test compares both with the committed files;
// `npm run gen:schema` rewrites them. Pure.
import { z } from 'zod';
import { configSchema } from '../core/schema.js';

export const JSON_SCHEMA_PATH = 'schemas/mptcp-reconciler.schema.json';
export const REFERENCE_DOC_PATH = 'docs/config-reference.md';

type JsonSchema = {
  type?: string | string[];
  description?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  additionalProperties?: JsonSchema | boolean;
  propertyNames?: JsonSchema;
  enum?: unknown[];
  const?: unknown;
  anyOf?: JsonSchema[];
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  default?: unknown;
  [k: string]: unknown;
};

export function buildJsonSchema(): JsonSchema {
  // draft-07: what yaml-language-server and most editors support best.
  const s = z.toJSONSchema(configSchema, { target: 'draft-7' }) as JsonSchema;
  return {
    $schema: s.$schema,
    title: 'mptcp-reconciler desired state',
    ...s,
  };
}

export function jsonSchemaText(): string {
  return `${JSON.stringify(buildJsonSchema(), null, 2)}\n`;
}

function typeOf(s: JsonSchema): string {
  if (s.const !== undefined) return `\`${JSON.stringify(s.const)}\``;
  if (s.enum) return s.enum.map((v) => `\`${String(v)}\``).join(' \\| ');
  if (s.anyOf) return s.anyOf.map(typeOf).join(' \\| ');
  if (s.type === 'array') return `list of ${s.items ? typeOf(s.items) : 'values'}`;
  if (s.type === 'object') return s.properties ? 'mapping' : 'mapping of name to value';
  if (s.type === 'integer') return 'integer';
  return String(s.type ?? 'any');
}

function rangeOf(s: JsonSchema): string {
  if (s.minimum !== undefined || s.maximum !== undefined) return `${s.minimum ?? ''}..${s.maximum ?? ''}`;
  if (s.type === 'array' && s.items) return rangeOf(s.items);
  if (s.minLength !== undefined || s.maxLength !== undefined) return `${s.minLength ?? 0}..${s.maxLength ?? ''} chars`;
  if (s.pattern) return `\`${s.pattern}\``;
  return '';
}

// What an absent key means; kernel defaults are in the descriptions.
const DEFAULTS: Record<string, string> = {
  version: 'required',
  namespaces: 'required',
  'namespaces[].netns': 'required',
  'namespaces[].nodes': 'every node',
  'namespaces[].mptcp': 'not touched',
  'namespaces[].limits': 'not touched',
  'namespaces[].endpoints': 'endpoints not managed',
  'namespaces[].rpFilter': 'not touched',
  'namespaces[].endpoints[].address': 'none (then `dev` is required)',
  'namespaces[].endpoints[].dev': 'none',
  'namespaces[].endpoints[].family': '`any`',
  'namespaces[].endpoints[].port': 'no port',
  'namespaces[].endpoints[].id': 'the file-order id',
  'namespaces[].endpoints[].flags': '`[]`',
};

function defaultOf(path: string, s: JsonSchema): string {
  if (s.default !== undefined) return `\`${JSON.stringify(s.default)}\``;
  if (DEFAULTS[path]) return DEFAULTS[path]!;
  if (path.startsWith('namespaces[].mptcp.') || path.startsWith('namespaces[].limits.')) return 'not touched';
  return '';
}

/**
 * Rules of `validate` that the JSON Schema cannot express, so an editor shows no
 * error for them. A test proves each with a config the schema accepts.
 */
export const SCHEMA_LIMITS = {
  'address-spellings': 'unspecified, loopback and multicast IPv6 addresses written in an unusual form (e.g. `0::0`)',
  'byte-lengths': 'lengths in bytes: the schema counts characters, so a name with non-ASCII characters can pass it and still exceed 15 (interface) or 255 (netns) bytes',
  'unique-keys': 'unique `id`s and unique (address, port) among endpoints that differ in other keys, and that `::ffff:192.0.2.1` is 192.0.2.1',
  merged: 'rules over all entries of one namespace after merging: at most 8 endpoints, unique ids and addresses',
  yaml: 'what the YAML reader refuses: duplicate keys, aliases, `__proto__`-like keys, files over 1 MiB',
} as const;
export type SchemaLimit = keyof typeof SCHEMA_LIMITS;

const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

function rows(s: JsonSchema, prefix: string, out: string[], sections: [string, JsonSchema][]): void {
  for (const [key, prop] of Object.entries(s.properties ?? {})) {
    const path = prefix ? `${prefix}.${key}` : key;
    const desc = prop.description ?? '';
    out.push(`| \`${key}\` | ${typeOf(prop)} | ${rangeOf(prop)} | ${defaultOf(path, prop)} | ${cell(desc)} |`);
    if (prop.type === 'object' && prop.properties) sections.push([path, prop]);
    if (prop.type === 'array' && prop.items?.properties) sections.push([`${path}[]`, prop.items]);
  }
}

export function referenceDocText(): string {
  const schema = buildJsonSchema();
  const lines = [
    '<!-- Generated from src/core/schema.ts by `npm run gen:schema`; do not edit by hand. -->',
    '# Config reference',
    '',
    'The desired-state file (`-f FILE` or a directory of `*.yaml`/`*.yml`, read in lexical order).',
    'Every file starts with `version: 1`. Unknown keys are errors. For one node and one namespace,',
    'every matching entry applies in file order: `mptcp`, `limits` and `rpFilter` merge key by key',
    '(later wins); endpoints are identified by (address, port), or (dev, port) when there is no',
    'address, and a later one replaces an earlier one; the later `prune` and `conflicts` win.',
    '`mptcp-reconciler render -f FILE --node NAME` prints the result.',
    '',
    'Editors: start a file with',
    '`# yaml-language-server: $schema=../schemas/mptcp-reconciler.schema.json` for completion.',
    '',
  ];
  const sections: [string, JsonSchema][] = [['', schema]];
  for (let i = 0; i < sections.length; i++) {
    const [path, s] = sections[i]!;
    lines.push(`## ${path ? `\`${path}\`` : 'Top level'}`, '');
    if (s.description) lines.push(s.description, '');
    lines.push('| Key | Type | Range | Default | Meaning |', '|---|---|---|---|---|');
    rows(s, path, lines, sections);
    lines.push('');
    if (path === 'namespaces[]') {
      const rp = s.properties?.rpFilter;
      const val = rp?.additionalProperties as JsonSchema | undefined;
      lines.push(
        '### `namespaces[].rpFilter`',
        '',
        `${rp?.description ?? ''}`,
        '',
        `Keys: ${rp?.propertyNames?.description ?? 'interface names'} Values: ${val ? typeOf(val) : ''}. ${val?.description ?? ''}`,
        '',
      );
    }
  }
  lines.push(
    '## Rules checked by `validate`',
    '',
    '- `flags`: `signal` and/or `subflow` (warning when neither: such an endpoint does nothing); `fullmesh` needs `subflow` and excludes `signal`; `port` needs `signal` and excludes `subflow`.',
    '- `id` 1..255 and unique in a namespace after merging; at most 8 endpoints per namespace after merging (an address-less `dev` endpoint counts as one here, and as one per address at run time).',
    '- No two endpoints with the same (address, port) in one entry; IPv4 and v4-mapped IPv6 (`::ffff:192.0.2.1`) are the same address.',
    '- An endpoint needs `address` or `dev`; `family` only with `dev` and no `address`; addresses without prefix length or zone id.',
    '- Interface names as the kernel accepts them (1-15 bytes, no `/`, `:` or whitespace, not `.`/`..`); `netns` is `host` or a name/glob without `/` or `..`.',
    '- Files over 1 MiB, duplicate keys, more than 100 aliases (or aliases that expand too much) and the keys `__proto__`, `constructor`, `prototype` are refused.',
    '- Endpoint addresses that can never work: unspecified (`0.0.0.0`, `::`), 0.0.0.0/8, loopback, multicast and `255.255.255.255`. An IPv6 link-local address (fe80::/10) needs `dev`: it is valid on one link only, and the kernel binds subflows from it to that interface.',
    '- A `netns` name or glob that can match nothing: one starting with `.` (`/run/netns` entries starting with `.` are never listed), or with an unbalanced `[`/`]`.',
    '',
    '## What the JSON Schema cannot check',
    '',
    'The schema carries every rule above that JSON Schema can express, so an editor marks them as you type. These only `validate` finds:',
    '',
    ...Object.values(SCHEMA_LIMITS).map((t) => `- ${t}.`),
    '',
  );
  return lines.join('\n');
}

const README_START = '<!-- config-reference:start: generated from src/core/schema.ts by `npm run gen:schema` -->';
const README_END = '<!-- config-reference:end -->';

/**
 * The README carries the same reference (one heading level down), so the page a
 * user lands on covers every key; the markers say where it goes.
 */
export function readmeWithReference(readme: string): string {
  const start = readme.indexOf(README_START);
  const end = readme.indexOf(README_END);
  if (start < 0 || end < start) throw new Error(`README.md lacks the markers ${README_START} ... ${README_END}`);
  const body = referenceDocText()
    .split('\n')
    .slice(2) // the generated-file comment and the page title
    .map((l) => (l.startsWith('#') ? `##${l}` : l))
    .join('\n')
    .trim();
  return `${readme.slice(0, start)}${README_START}\n${body}\n${readme.slice(end)}`;
}
