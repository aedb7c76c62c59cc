import { describe, expect, it, jest } from '@jest/globals';
import { integerFlag, UsageError } from '../../src/cli/command.js';
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

  it.each([
    [['--allowed-endpoints', 'not a url'], '--allowed-endpoints: allowed endpoint "not a url" is not a URL'],
    [['--allowed-endpoints', 'ftp://hpc.api.shanhe.com'], 'is not http(s)'],
    [['--sync-timeout', '1000h'], '--sync-timeout must be a duration like 30s or 2m, at most 24h, got "1000h"'],
    [['--drain-timeout', '600h'], '--drain-timeout must be a duration'],
    [['--max-users-per-sync', '0'], '--max-users-per-sync must be a positive integer'],
    [['--webhook-addr', ':9443', '--webhook-cert-validity', '1h', '--webhook-cert-renew-before', '1h'], '--webhook-cert-renew-before must be more than 0 and less than --webhook-cert-validity'],
  ])('run refuses %j before it starts', async (flags, message) => {
    const err = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      expect(await main(['run', ...flags])).toBe(2);
      expect(err.mock.calls.map((call) => String(call[0])).join('')).toContain(message);
    } finally {
      err.mockRestore();
    }
  });
});

describe('integerFlag', () => {
  it('reads an integer at or above its minimum, and the fallback when absent', () => {
    expect(integerFlag({ n: '4' }, 'n', 1, 1)).toBe(4);
    expect(integerFlag({ n: '0' }, 'n', 1, 0)).toBe(0);
    expect(integerFlag({}, 'n', 7, 1)).toBe(7);
  });

  it.each([
    ['0', 1, '--n must be a positive integer, got "0"'],
    ['-1', 0, '--n must be a non-negative integer, got "-1"'],
    ['2.5', 0, '--n must be a non-negative integer, got "2.5"'],
    ['3', 5, '--n must be an integer of at least 5, got "3"'],
  ])('refuses %j below or beside minimum %i', (text, min, message) => {
    expect(() => integerFlag({ n: text }, 'n', 1, min)).toThrow(new UsageError(message));
  });
});
