// The collection that follows the initial lists: it must return memory on the Node.js that
// runs it, whatever that major accepts of V8's gc options.
import { getHeapStatistics } from 'node:v8';
import { describe, expect, it } from '@jest/globals';
import { collectGarbage } from '../../src/runtime/memory.js';

/** Builds about 20 MB that nothing holds once it returns, and the heap's use while it was held. */
function burst(): { rows: number; usedWhileHeld: number } {
  const rows = Array.from({ length: 300_000 }, (_, index) => ({ index, text: `row ${String(index)}` }));
  return { rows: rows.length, usedWhileHeld: getHeapStatistics().used_heap_size };
}

describe('collectGarbage', () => {
  it('frees what nothing holds any more', () => {
    const { rows, usedWhileHeld } = burst();
    collectGarbage();
    expect(rows).toBe(300_000);
    // At least half of the burst is gone once the collection returns.
    expect(usedWhileHeld - getHeapStatistics().used_heap_size).toBeGreaterThan(10 * 2 ** 20);
  });
});
