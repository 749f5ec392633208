// One table maps endpoint flag bits to names (include/uapi/linux/mptcp_pm.h).
// Everything that turns bits into names or back goes through it, so an unknown
// bit is never silently lost: it stays visible as `rawFlags`.
export const ENDPOINT_FLAGS = [
  { name: 'signal', bit: 0x01 },
  { name: 'subflow', bit: 0x02 },
  { name: 'backup', bit: 0x04 },
  { name: 'fullmesh', bit: 0x08 },
  { name: 'implicit', bit: 0x10 },
  { name: 'laminar', bit: 0x20 },
] as const;

export type FlagName = (typeof ENDPOINT_FLAGS)[number]['name'];

export const KNOWN_FLAG_MASK = ENDPOINT_FLAGS.reduce((m, f) => m | f.bit, 0);

export function flagsFromBits(bits: number): { flags: FlagName[]; unknown: number } {
  const flags = ENDPOINT_FLAGS.filter((f) => (bits & f.bit) !== 0).map((f) => f.name);
  return { flags, unknown: (bits & ~KNOWN_FLAG_MASK) >>> 0 };
}

export function bitsFromFlags(flags: readonly FlagName[], unknown = 0): number {
  let bits = unknown;
  for (const name of flags) {
    const f = ENDPOINT_FLAGS.find((x) => x.name === name);
    if (!f) throw new Error(`unknown endpoint flag ${String(name)}`);
    bits |= f.bit;
  }
  return bits >>> 0;
}

/** Canonical order (table order), duplicates removed. */
export function sortFlags(flags: readonly FlagName[]): FlagName[] {
  return ENDPOINT_FLAGS.map((f) => f.name).filter((n) => flags.includes(n));
}
