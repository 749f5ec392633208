// The kernel layer with openNamespace recorded: for tests that prove a refusal
// comes before any namespace is opened. Used from a vi.mock factory, so it
// imports nothing at run time (the factory runs before the test's imports).
import type * as Namespace from '../../src/kernel/namespace.js';

/** `real` with openNamespace pushing each name onto `opened` before opening it. */
export function recordOpens(real: typeof Namespace, opened: string[]): typeof Namespace {
  return {
    ...real,
    openNamespace: (...args: Parameters<typeof real.openNamespace>) => {
      opened.push(args[0]);
      return real.openNamespace(...args);
    },
  };
}
