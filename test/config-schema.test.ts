// The committed JSON Schema and key reference are generated from the zod schema;
// this fails when they are stale. `npm run gen:schema` rewrites them.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildJsonSchema, JSON_SCHEMA_PATH, jsonSchemaText, readmeWithReference, REFERENCE_DOC_PATH, referenceDocText } from '../src/config/reference.js';

const root = join(import.meta.dirname, '..');
const update = process.env.UPDATE_SCHEMA === '1';

function checkGenerated(rel: string, want: string): void {
  const file = join(root, rel);
  if (update) writeFileSync(file, want);
  let have = '';
  try {
    have = readFileSync(file, 'utf8');
  } catch {
    // missing: reported below
  }
  if (have !== want) {
    expect.fail(`${rel} is stale (it does not match src/core/schema.ts); regenerate it with \`npm run gen:schema\` and commit it`);
  }
}

type S = { description?: string; properties?: Record<string, S>; items?: S; additionalProperties?: S | boolean; anyOf?: S[] };

describe('generated schema artefacts', () => {
  it('schemas/mptcp-reconciler.schema.json is up to date', () => {
    checkGenerated(JSON_SCHEMA_PATH, jsonSchemaText());
  });
  it('docs/config-reference.md is up to date', () => {
    checkGenerated(REFERENCE_DOC_PATH, referenceDocText());
  });
  it('the README carries the same key reference', () => {
    checkGenerated('README.md', readmeWithReference(readFileSync(join(root, 'README.md'), 'utf8')));
  });
  it('describes every key, so editors show help everywhere', () => {
    const missing: string[] = [];
    const walk = (s: S, path: string) => {
      for (const [k, p] of Object.entries(s.properties ?? {})) {
        if (!p.description) missing.push(`${path}.${k}`);
        walk(p, `${path}.${k}`);
        if (p.items) walk(p.items, `${path}.${k}[]`);
        if (typeof p.additionalProperties === 'object') walk(p.additionalProperties, `${path}.${k}.*`);
      }
    };
    walk(buildJsonSchema() as S, '');
    expect(missing).toEqual([]);
  });
  it('rejects unknown keys and lists the enums the loader accepts', () => {
    const s = buildJsonSchema() as { additionalProperties?: boolean; properties: Record<string, { items: { properties: Record<string, { items?: { properties: Record<string, { items?: { enum?: string[] } }> } }> } }> };
    expect(s.additionalProperties).toBe(false);
    const ep = s.properties.namespaces!.items.properties.endpoints!.items!.properties;
    expect(ep.flags!.items!.enum).toEqual(['signal', 'subflow', 'backup', 'fullmesh', 'laminar']);
  });
  it('the reference documents every mptcp sysctl key with its range', () => {
    const doc = referenceDocText();
    for (const key of ['enabled', 'pathManager', 'addAddrTimeout', 'allowJoinInitialAddrPort', 'synRetransBeforeTcpFallback', 'subflows', 'addAddrAccepted', 'fullmesh']) {
      expect(doc).toContain(key);
    }
    expect(doc).toMatch(/\| `id` \| integer \| 1\.\.255 \|/);
    expect(doc).toMatch(/\| `subflows` \| integer \| 0\.\.8 \| not touched \|/);
  });
});
