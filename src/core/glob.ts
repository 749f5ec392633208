// Globs over namespace and node names. Names have no "/", so a glob is matched
// against the whole name; dotfiles match like any other name.
import picomatch from 'picomatch';

const cache = new Map<string, (s: string) => boolean>();

export function globMatch(pattern: string, name: string): boolean {
  let m = cache.get(pattern);
  if (!m) {
    m = picomatch(pattern, { dot: true, nobrace: false, noextglob: true });
    cache.set(pattern, m);
  }
  return m(name);
}

export function isGlob(pattern: string): boolean {
  return /[*?[\]{}!]/.test(pattern);
}
