import { describe, expect, it } from '@jest/globals';
import { parse } from 'yaml';
import { buildCrd, crdYaml } from '../../src/api/crd.js';
import { formatDuration, parseDuration } from '../../src/api/duration.js';
import { validateSpec } from '../../src/api/hpccluster.js';

const minimal = { clusterId: 'hpc-qig9xu97', zone: 'jinan1a', credentialsSecretRef: { name: 'shanhe-api-key' } };

describe('validateSpec', () => {
  it('applies every default of SPEC to a minimal spec', () => {
    const result = validateSpec(minimal);
    expect(result).toEqual({
      ok: true,
      spec: {
        ...minimal,
        endpoint: 'https://hpc.api.shanhe.com',
        allowInsecureHttp: false,
        credentialsSecretRef: { name: 'shanhe-api-key', accessKeyIdKey: 'access_key_id', secretAccessKeyKey: 'secret_access_key' },
        syncInterval: '10m',
        suspend: false,
        idRange: { min: 1000, max: 2147483647 },
        maxUserRemovalPercent: 50,
      },
    });
  });

  it.each([
    ['a missing clusterId', { ...minimal, clusterId: undefined }, 'spec.clusterId'],
    ['a missing Secret reference', { ...minimal, credentialsSecretRef: undefined }, 'spec.credentialsSecretRef'],
    ['plain http without allowInsecureHttp', { ...minimal, endpoint: 'http://127.0.0.1:8080' }, 'https:// unless allowInsecureHttp'],
    ['a syncInterval below 30s', { ...minimal, syncInterval: '10s' }, 'spec.syncInterval: syncInterval must be between 30s and 24h'],
    ['a syncInterval above 24h (past 596h it would overflow a timer)', { ...minimal, syncInterval: '1000h' }, 'spec.syncInterval: syncInterval must be between 30s and 24h'],
    ['a syncInterval just above 24h', { ...minimal, syncInterval: '24h1s' }, 'spec.syncInterval: syncInterval must be between 30s and 24h'],
    ['a syncInterval that is not a duration', { ...minimal, syncInterval: 'often' }, 'spec.syncInterval'],
    ['an inverted idRange', { ...minimal, idRange: { min: 5000, max: 4000 } }, 'idRange.min must not be greater than idRange.max'],
    ['an idRange that admits root', { ...minimal, idRange: { min: 0, max: 10 } }, 'spec.idRange.min'],
    ['an unknown role filter', { ...minimal, filter: { roles: ['root'] } }, 'spec.filter.roles.0'],
    ['a removal percentage above 100', { ...minimal, maxUserRemovalPercent: 101 }, 'spec.maxUserRemovalPercent'],
    [
      'a home naming both a claim and NFS',
      { ...minimal, podIdentity: { home: { persistentVolumeClaim: { claimName: 'nas' }, nfs: { server: 'nas', path: '/' } } } },
      'spec.podIdentity.home: podIdentity.home must name exactly one of persistentVolumeClaim and nfs',
    ],
    ['a home naming neither', { ...minimal, podIdentity: { home: {} } }, 'podIdentity.home must name exactly one'],
    ['a relative NFS path', { ...minimal, podIdentity: { home: { nfs: { server: 'nas', path: 'export' } } } }, 'spec.podIdentity.home.nfs.path'],
  ])('refuses %s with a message naming the field', (_name, spec, expected) => {
    const result = validateSpec(spec);
    expect(result.ok).toBe(false);
    expect(result.ok ? '' : result.message).toContain(expected);
  });

  it('accepts plain http when allowInsecureHttp is set', () => {
    expect(validateSpec({ ...minimal, endpoint: 'http://127.0.0.1:8080', allowInsecureHttp: true }).ok).toBe(true);
  });
});

describe('parseDuration', () => {
  it.each([
    ['30s', 30_000],
    ['10m', 600_000],
    ['1h30m', 5_400_000],
    ['1.5h', 5_400_000],
    ['250ms', 250],
  ])('reads %s', (text, ms) => expect(parseDuration(text)).toBe(ms));

  it.each(['', '10', 'm', '10d', '-5s', '1h 30m'])('refuses %j', (text) => expect(parseDuration(text)).toBeUndefined());
});

describe('formatDuration', () => {
  it.each([
    [45_000, '45s'],
    [140_000, '2m20s'],
    [5_400_000, '1h30m'],
    [3_600_000, '1h'],
    [1_500, '2s'],
  ])('writes %d ms as %s, which parseDuration reads back', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
    expect(parseDuration(text)).toBe(Math.ceil(ms / 1000) * 1000);
  });
});

describe('the CRD', () => {
  it('describes every spec and status field, so kubectl explain teaches the API', () => {
    const undescribed: string[] = [];
    const walk = (schema: Record<string, unknown>, path: string): void => {
      const properties = (schema.properties ?? {}) as Record<string, Record<string, unknown>>;
      for (const [name, child] of Object.entries(properties)) {
        if (typeof child.description !== 'string' || child.description === '') undescribed.push(`${path}.${name}`);
        walk(child, `${path}.${name}`);
        const items = child.items as Record<string, unknown> | undefined;
        if (items !== undefined) walk(items, `${path}.${name}[]`);
      }
    };
    const crd = parse(crdYaml()) as ReturnType<typeof buildCrd> & { spec: { versions: { schema: { openAPIV3Schema: Record<string, unknown> } }[] } };
    const root = crd.spec.versions[0]?.schema.openAPIV3Schema ?? {};
    const props = root.properties as Record<string, Record<string, unknown>>;
    walk(props.spec ?? {}, 'spec');
    walk(props.status ?? {}, 'status');
    expect(undescribed).toEqual([]);
  });
});
