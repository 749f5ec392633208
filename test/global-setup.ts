// Builds dist/ once before any test file runs: several files spawn the built bin,
// and two of them rebuilding it side by side would hand one a half-written file.
import { ensureBuilt } from './helpers/build.js';

export default function setup(): void {
  ensureBuilt();
}
