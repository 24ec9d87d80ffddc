import type { StreamDigests } from './thread.js';

/** thread.mjs's stream of a gzip or gunzip (what the `gzip` and `gunzip` operations run on their worker thread). */
export function zipStream(
  args: { src: string; dest: string; level?: number },
  gunzip: boolean,
  progress?: (rawBytes: number) => void,
): Promise<StreamDigests>;
