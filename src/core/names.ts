// Name checks that both the config schema and the kernel layer need, kept
// apart from either so that the kernel layer does not depend on the config
// format. Pure: no I/O.

/** The kernel's dev_valid_name(): 1..15 bytes, not "." or "..", no "/", ":" or whitespace. */
export function interfaceNameProblem(name: string): string | undefined {
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes === 0) return 'is empty';
  if (bytes > 15) return `is ${bytes} bytes long; the kernel allows at most 15`;
  if (name === '.' || name === '..') return 'may not be "." or ".."';
  if (/[/:\s]/.test(name)) return 'may not contain "/", ":" or whitespace';
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(name)) return 'may not contain control characters';
  return undefined;
}

/**
 * Stricter than the kernel for names written in a config: they end up in messages
 * and logs that people paste into shells, and real interface names never need these.
 * (The kernel layer keeps the kernel's rule, so odd live names are still read.)
 */
export function configInterfaceNameProblem(name: string): string | undefined {
  return interfaceNameProblem(name) ?? (/[;&|$`'"<>()\\]/.test(name) ? 'may not contain the characters ; & | $ ` \' " < > ( ) \\' : undefined);
}

export function netnsPatternProblem(v: string): string | undefined {
  if (v.length === 0) return 'is empty';
  if (Buffer.byteLength(v, 'utf8') > 255) return 'is longer than 255 bytes';
  if (v.includes('/')) return 'may not contain "/" (it names an entry in /run/netns)';
  if (v === '.' || v === '..' || v.includes('..')) return 'may not contain ".."';
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(v)) return 'may not contain control characters';
  // Names end up in paths and in messages people paste into shells; real
  // namespace names (ip netns, CNI, Docker) never need these.
  if (/[\s;&|$`'"<>()\\]/.test(v)) return 'may not contain whitespace or the characters ; & | $ ` \' " < > ( ) \\';
  // Entries of /run/netns whose name starts with "." are never listed (like ls),
  // so such a name or glob could never match a namespace.
  if (v.startsWith('.')) return 'starts with "."; names in /run/netns starting with "." are never listed, so it would match nothing';
  return bracketProblem(v);
}

/** A glob's [...] sets must close: an unclosed "[" is taken literally and the glob silently matches nothing meant. */
function bracketProblem(v: string): string | undefined {
  let open = false;
  for (const ch of v) {
    if (ch === '[') {
      if (open) return 'has a "[" inside a [...] set; sets do not nest';
      open = true;
    } else if (ch === ']') {
      if (!open) return 'has a "]" without a "[" before it';
      open = false;
    }
  }
  return open ? 'has a "[" that is never closed by "]"' : undefined;
}
