import { describe, expect, it, jest } from '@jest/globals';
import { main } from '../../src/cli/main.js';

describe('hpc-user-operator CLI', () => {
  it('prints the command list on --help and exits 0', async () => {
    const out = jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
    try {
      expect(await main(['--help'])).toBe(0);
      expect(String(out.mock.calls[0]?.[0])).toContain('Usage: hpc-user-operator <command>');
    } finally {
      out.mockRestore();
    }
  });

  it('rejects an unknown command with exit status 2', async () => {
    const err = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      expect(await main(['no-such-command'])).toBe(2);
      expect(String(err.mock.calls[0]?.[0])).toContain('unknown command "no-such-command"');
    } finally {
      err.mockRestore();
    }
  });
});
