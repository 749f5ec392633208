// The /run/netns trigger on a real directory: entries added and removed, the
// directory missing at start, removed and created again.
import { mkdirSync, rmSync, writeFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { watchNetnsDir } from '../src/daemon/watchers.js';
import { eventually, tempDir } from './helpers/daemon.js';

const t = tempDir('netnsdir');
afterAll(() => t.cleanup());

describe('watchNetnsDir', () => {
  it('fires for entries added and removed, also when the directory appears only later or is re-created', async () => {
    const dir = join(t.dir, 'netns');
    let fired = 0;
    const errors: Error[] = [];
    const w = await watchNetnsDir(dir, () => fired++, { debounceMs: 5, onError: (e) => errors.push(e) });
    try {
      const step = async (what: string, act: () => void) => {
        const before = fired;
        act();
        await eventually(what, () => fired > before, 3000);
      };
      await step('directory created', () => mkdirSync(dir));
      await step('entry added', () => writeFileSync(join(dir, 'ns1'), ''));
      await step('entry removed', () => unlinkSync(join(dir, 'ns1')));
      await step('directory removed', () => rmSync(dir, { recursive: true }));
      await step('directory created again', () => mkdirSync(dir));
      await step('entry added to the new directory', () => writeFileSync(join(dir, 'ns2'), ''));
      // Nothing happens: nothing fires.
      await new Promise((r) => setTimeout(r, 100));
      const quiet = fired;
      writeFileSync(join(t.dir, 'unrelated'), '');
      await new Promise((r) => setTimeout(r, 100));
      expect(fired).toBe(quiet);
      expect(errors).toEqual([]);
    } finally {
      await w.close();
    }
  });

  it('names the entries that changed, or none when the directory itself came and went', async () => {
    const dir = join(t.dir, 'netns-names');
    mkdirSync(dir);
    const calls: (string[] | 'any')[] = [];
    const w = await watchNetnsDir(dir, (touched) => calls.push(touched ? [...touched].sort() : 'any'), { debounceMs: 20 });
    try {
      writeFileSync(join(dir, 'pod-a'), '');
      writeFileSync(join(dir, 'pod-b'), '');
      await eventually('two entries named', () => calls.flat().includes('pod-b'), 3000);
      expect(calls.filter((c) => c !== 'any').flat().sort()).toEqual(['pod-a', 'pod-b']);
      rmSync(dir, { recursive: true });
      await eventually('directory removal reported as "any"', () => calls.includes('any'), 3000);
    } finally {
      await w.close();
    }
  });
});
