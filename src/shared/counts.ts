/** `kind n, kind n` of the non-zero counts, or `none` (plan summaries of the replay and recovery runbooks). */
export const countsLine = (counts: Record<string, number>): string =>
  Object.entries(counts)
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${k} ${n}`)
    .join(', ') || 'none';
