// `apply`: one enforcing pass over every selected namespace, then the same report
// as `plan` with each operation's result. Exit 0 only when every selected
// namespace re-read and verified as converged.
import type { CliIO } from '../io.js';
import { printPass, runPass, type PassOptions } from './plan.js';

export async function run(opts: PassOptions, io: CliIO): Promise<number> {
  const outcome = await runPass(opts, io, 'enforce');
  if (!outcome) return 1;
  printPass(outcome, opts, io, true);
  return outcome.reports.every((r) => r.result.converged && r.result.errors.length === 0) ? 0 : 1;
}
