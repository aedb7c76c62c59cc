import { createPrivateKey, X509Certificate } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { caOverlapMs, renewCertificates, type CertificateMaterial, type CertificatePolicy } from '../../../src/webhook/certificates.js';

const HOUR = 3_600_000;
const policy: CertificatePolicy = { hosts: ['hpc-user-operator-webhook.ops.svc', '127.0.0.1'], validityMs: 6 * HOUR };
const t0 = new Date('2026-01-01T00:00:00Z');
const at = (ms: number) => new Date(t0.getTime() + ms);

const bundleOf = (material: CertificateMaterial): X509Certificate[] =>
  (material['ca.crt'].match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map((pem) => new X509Certificate(pem));

/** As Go's pem.Decode needs it (the apiserver parses caBundle so): each block on lines of its own. */
const WELL_FORMED_PEM = /^(-----BEGIN CERTIFICATE-----\n[A-Za-z0-9+/=\n]+\n-----END CERTIFICATE-----\n)+$/;

/** What the apiserver does: the serving certificate chains to a CA of the bundle and is valid now. */
function verifies(material: CertificateMaterial, bundle: X509Certificate[], now: Date): boolean {
  const serving = new X509Certificate(material['tls.crt']);
  const inTime = Date.parse(serving.validFrom) <= now.getTime() && now.getTime() < Date.parse(serving.validTo);
  return inTime && bundle.some((ca) => serving.checkIssued(ca) && serving.verify(ca.publicKey) && now.getTime() < Date.parse(ca.validTo));
}

describe('renewCertificates', () => {
  it('creates a CA and a serving certificate for the hosts, and then leaves them alone', async () => {
    const first = await renewCertificates(undefined, policy, t0);
    if (first === undefined) throw new Error('nothing created');
    const serving = new X509Certificate(first['tls.crt']);
    expect(serving.subjectAltName).toBe('DNS:hpc-user-operator-webhook.ops.svc, IP Address:127.0.0.1');
    expect(serving.checkPrivateKey(createPrivateKey(first['tls.key']))).toBe(true);
    expect(bundleOf(first)).toHaveLength(1);
    expect(bundleOf(first)[0]?.ca).toBe(true);
    expect(verifies(first, bundleOf(first), t0)).toBe(true);
    expect(await renewCertificates(first, policy, at(HOUR))).toBeUndefined();
  });

  it('replaces unreadable material whole, and reissues for new hosts', async () => {
    const broken = await renewCertificates({ 'ca.crt': 'junk', 'tls.crt': 'junk' }, policy, t0);
    expect(broken).toBeDefined();
    const moved = await renewCertificates(broken, { ...policy, hosts: ['other.ops.svc'] }, at(1000));
    expect(new X509Certificate(moved?.['tls.crt'] ?? '').subjectAltName).toBe('DNS:other.ops.svc');
    expect(moved?.['ca.crt']).toBe(broken?.['ca.crt']);
  });

  it('over several CA lifetimes, every certificate served verifies against the bundle before and after each renewal', async () => {
    let material = await renewCertificates(undefined, policy, t0);
    if (material === undefined) throw new Error('nothing created');
    const step = caOverlapMs(policy);
    let servingRenewals = 0;
    let caRenewals = 0;
    let largestBundle = 1;
    for (let now = step; now < 56 * HOUR; now += step) {
      const next = await renewCertificates(material, policy, at(now));
      if (next === undefined) {
        expect(verifies(material, bundleOf(material), at(now))).toBe(true);
        continue;
      }
      // Replicas and the apiserver pick up the change at different times: old and new must mix.
      expect(verifies(next, bundleOf(material), at(now))).toBe(true);
      expect(verifies(material, bundleOf(next), at(now))).toBe(true);
      if (next['tls.crt'] !== material['tls.crt']) servingRenewals += 1;
      if (next['ca.key'] !== material['ca.key']) caRenewals += 1;
      largestBundle = Math.max(largestBundle, bundleOf(next).length);
      expect(next['ca.crt']).toMatch(WELL_FORMED_PEM);
      expect(next['tls.crt']).toMatch(WELL_FORMED_PEM);
      material = next;
    }
    expect(caRenewals).toBeGreaterThanOrEqual(2);
    expect(servingRenewals).toBeGreaterThan(caRenewals);
    expect(largestBundle).toBe(2);
    // Key generation and signing at every renewal: CPU work that a loaded machine slows down.
  }, 60_000);

  it('renews a short-lived certificate renewBefore its end, not at once (the backdating is not counted as life)', async () => {
    const short: CertificatePolicy = { hosts: ['127.0.0.1'], validityMs: 20_000, renewBeforeMs: 15_000 };
    const first = await renewCertificates(undefined, short, t0);
    if (first === undefined) throw new Error('nothing created');
    expect(await renewCertificates(first, short, at(1_000))).toBeUndefined();
    expect(await renewCertificates(first, short, at(4_900))).toBeUndefined();
    const renewed = await renewCertificates(first, short, at(5_100));
    expect(renewed?.['tls.crt']).not.toBe(first['tls.crt']);
    expect(renewed?.['ca.crt']).toBe(first['ca.crt']);
    // The CA (80 s) is renewed 4 × 15 s before its end: at 20 s, into the bundle first.
    expect(await renewCertificates(renewed, short, at(6_000))).toBeUndefined();
    const newCa = await renewCertificates(renewed, short, at(20_100));
    expect(bundleOf(newCa as CertificateMaterial)).toHaveLength(2);
    expect(newCa?.['tls.crt']).toBe(renewed?.['tls.crt']);
    expect(caOverlapMs(short)).toBeLessThan(15_000);
  });

  it('by default renews a serving certificate with a third of its life left', async () => {
    const first = await renewCertificates(undefined, policy, t0);
    expect(await renewCertificates(first, policy, at(3.9 * HOUR))).toBeUndefined();
    expect((await renewCertificates(first, policy, at(4.1 * HOUR)))?.['tls.crt']).not.toBe(first?.['tls.crt']);
  });
});
