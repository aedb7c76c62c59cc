// go's messages kept in a log file instead of the console (the cold control-plane build's
// hundreds of `go: downloading` lines), each line also handed to the caller for progress.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import { runGo } from '../../tools/go-build.js';

const dir = mkdtempSync(join(tmpdir(), 'go-build-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('runGo with a log', () => {
  it("writes go's stderr to the log, hands each line on, and names the log when go fails", async () => {
    const file = join(dir, 'go.log');
    const lines: string[] = [];
    await expect(runGo(['help', 'no-such-topic'], { cwd: dir, log: { file, onLine: (line) => lines.push(line) } })).rejects.toThrow(
      `go help no-such-topic failed with exit code 2 (log: ${file})`,
    );
    expect(lines).toEqual(["go help no-such-topic: unknown help topic. Run 'go help'."]);
    expect(readFileSync(file, 'utf8')).toBe(`${lines.join('\n')}\n`);
  });
});
