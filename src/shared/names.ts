/**
 * People's names are compared in one canonical form, so "Alice", "alice", "ａｌｉｃｅ" and "alice\u200b" are one
 * person: Unicode NFKC, default-ignorable code points (zero-width spaces, joiners, soft hyphens, …) removed,
 * whitespace collapsed, then case-folded (upper then lower, so "ß" and "SS" fold alike) and normalised again.
 */
export function canonicalName(name: string): string {
  const compatible = name.normalize('NFKC').replace(/\p{Default_Ignorable_Code_Point}/gu, '');
  return compatible.replace(/\s+/gu, ' ').trim().toUpperCase().toLowerCase().normalize('NFKC');
}

/** Whether two names denote the same person. */
export const sameName = (a: string, b: string): boolean => canonicalName(a) === canonicalName(b);
