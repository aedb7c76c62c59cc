import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * Runs a full garbage collection now. V8 sizes its heap by the allocation rate it has seen,
 * so after a burst that leaves little alive (the initial lists: every ConfigMap's JSON parsed
 * and slimmed) the heap stays grown, and the pod's RSS with it, until V8 happens to shrink it.
 * One collection at the end of such a burst returns that memory at once. V8 offers this only
 * behind --expose-gc; the flag is set here, for this one call site, rather than process-wide.
 */
export function collectGarbage(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}
