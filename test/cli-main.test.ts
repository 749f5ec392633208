import { describe, expect, it } from 'vitest';
import { main } from '../src/cli/main.js';
import { captureIO } from './helpers/io.js';

const io = () => captureIO();

describe('cli', () => {
  it('prints usage and exits 1 without a command', async () => {
    const t = io();
    expect(await main([], t.io)).toBe(1);
    expect(t.err()).toContain('Usage: mptcp-reconciler');
  });
  it('rejects an unknown option with exit 1 and no stack trace', async () => {
    const t = io();
    expect(await main(['validate', '-f', 'x.yaml', '--bogus'], t.io)).toBe(1);
    expect(t.err()).toMatch(/unknown option '--bogus'/);
    expect(t.err()).not.toMatch(/\n\s+at /);
  });
});
