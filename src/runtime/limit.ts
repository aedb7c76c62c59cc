/**
 * Runs at most `concurrency` of the tasks given to it at once, the rest in the order given.
 * Reads of whole ConfigMaps go through one: after a restart every ConfigMap may need one, and
 * a users ConfigMap is some 250 KB of JSON to hold and parse.
 */
export function concurrencyLimit(concurrency: number): <T>(task: () => Promise<T>) => Promise<T> {
  let running = 0;
  const waiting: (() => void)[] = [];
  return async <T>(task: () => Promise<T>): Promise<T> => {
    // A finished task hands its slot straight to the next waiting one.
    if (running >= concurrency) await new Promise<void>((resolve) => waiting.push(resolve));
    else running++;
    try {
      return await task();
    } finally {
      const next = waiting.shift();
      if (next === undefined) running--;
      else next();
    }
  };
}
