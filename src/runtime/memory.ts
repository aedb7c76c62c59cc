import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** V8's `gc`: no options is a full collection; `last-resort` is its memory-reducing one. */
type Gc = (options?: { type: 'major'; execution: 'sync'; flavor: 'last-resort' }) => void;

/**
 * Runs a full, memory-reducing garbage collection now. V8 sizes its heap by the allocation
 * rate it has seen, so after a burst that leaves little alive (the initial lists: every
 * ConfigMap's JSON parsed and slimmed) the heap stays grown, and the pod's RSS with it, until
 * V8 happens to shrink it. Two calls, since the majors differ: the plain one frees the burst
 * (Node 20's V8 keeps it through a collection called with options), and the `last-resort` one
 * then shrinks the young generation, which the plain one leaves at its grown size (Node 24:
 * idle RSS 92 → 82 MB). V8 offers this only behind --expose-gc; the flag is set here, for
 * this one call site, rather than process-wide.
 */
export function collectGarbage(): void {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as Gc;
  gc();
  gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
}
