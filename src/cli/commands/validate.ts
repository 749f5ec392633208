import type { CliIO } from '../io.js';

// Placeholder until the command lands; exits 1 so nothing mistakes it for success.
export async function run(_opts: Record<string, unknown>, io: CliIO): Promise<number> {
  io.stderr.write('error: `validate` is not implemented yet\n');
  return 1;
}
