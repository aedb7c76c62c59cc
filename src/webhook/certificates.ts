// @peculiar/x509 resolves its services through tsyringe, which needs the Reflect metadata API.
import 'reflect-metadata';
import { createPrivateKey, createPublicKey, KeyObject, webcrypto, X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import * as x509 from '@peculiar/x509';

/**
 * The webhook's own CA and serving certificate, when the operator manages them. The kube-apiserver
 * verifies the webhook against the configuration's caBundle, so renewal must never present a
 * certificate the apiserver's current bundle cannot verify:
 * - the serving certificate is renewed `renewBeforeMs` before it ends, from the same CA: any
 *   replica may serve the old or the new one meanwhile;
 * - the CA is renewed four times as early (it lives four times as long) by adding the new CA to
 *   the bundle first; only after `overlap` (the bundle has long reached the apiserver and every
 *   replica) is a serving certificate issued from it; a CA leaves the bundle when it expires.
 * Renewal goes by the time left, not by a share of the validity period: that period includes the
 * backdating, which would make a short-lived certificate due the moment it is issued.
 */

// Node's WebCrypto, as the DOM's Crypto that @peculiar/x509 declares (the project has no DOM lib).
type X509Crypto = Parameters<typeof x509.cryptoProvider.set>[0];
x509.cryptoProvider.set(webcrypto as unknown as X509Crypto);

const KEY_ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGNING_ALGORITHM = { name: 'ECDSA', hash: 'SHA-256' } as const;
/** Backdated so that a peer whose clock is a little behind accepts a new certificate. */
const CLOCK_SKEW_MS = 60_000;

/** What the Secret holds (keys as cert-manager and kubernetes.io/tls name them). */
export interface CertificateMaterial {
  /** PEM bundle: every CA the apiserver should trust, newest first. */
  'ca.crt': string;
  /** PEM (PKCS#8) key of the newest CA. */
  'ca.key': string;
  'tls.crt': string;
  'tls.key': string;
}

export interface CertificatePolicy {
  /** DNS names and IP addresses the serving certificate is for. */
  hosts: string[];
  /** Life of a serving certificate; a CA lives four times as long. */
  validityMs: number;
  /** Renew a serving certificate this long before it ends (default: a third of validityMs; less than validityMs). */
  renewBeforeMs?: number;
}

const caValidityMs = (policy: CertificatePolicy): number => policy.validityMs * 4;
const renewBeforeMs = (policy: CertificatePolicy): number => policy.renewBeforeMs ?? policy.validityMs / 3;
/**
 * How long a new CA sits in the bundle before it signs the serving certificate: shorter than
 * renewBefore, so a serving certificate that is due is renewed before it ends.
 */
export const caOverlapMs = (policy: CertificatePolicy): number => Math.min(policy.validityMs / 6, renewBeforeMs(policy) / 2);

/**
 * PEM text as Go's pem.Decode reads it: every block on lines of its own. (@peculiar/x509 ends a
 * PEM without a newline, so blocks joined as they are would share a line, and the apiserver
 * would reject the whole caBundle.)
 */
const pemText = (pem: string): string => (pem.endsWith('\n') ? pem : `${pem}\n`);

const pemBlocks = (bundle: string): string[] => bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g) ?? [];

function keyPem(key: webcrypto.CryptoKey): string {
  return KeyObject.from(key).export({ type: 'pkcs8', format: 'pem' }) as string;
}

const generateKeys = (): Promise<webcrypto.CryptoKeyPair> => webcrypto.subtle.generateKey(KEY_ALGORITHM, true, ['sign', 'verify']);

async function importSigningKey(pem: string): Promise<webcrypto.CryptoKey> {
  const der = createPrivateKey(pem).export({ type: 'pkcs8', format: 'der' });
  return webcrypto.subtle.importKey('pkcs8', der, KEY_ALGORITHM, false, ['sign']);
}

export interface IssuedCa {
  certPem: string;
  keyPem: string;
}

/** A self-signed CA of `validityMs` (also what a test playing cert-manager issues from). */
export async function createCa(now: Date, validityMs: number): Promise<IssuedCa> {
  const keys = await generateKeys();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    name: `CN=hpc-user-operator webhook CA ${now.toISOString()}`,
    keys,
    notBefore: new Date(now.getTime() - CLOCK_SKEW_MS),
    notAfter: new Date(now.getTime() + validityMs),
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: pemText(cert.toString('pem')), keyPem: keyPem(keys.privateKey) };
}

/** A serving certificate for `hosts` from `ca`, with a key pair of its own. */
export async function createServing(ca: IssuedCa, hosts: string[], now: Date, validityMs: number): Promise<{ cert: string; key: string }> {
  const keys = await generateKeys();
  const caCert = new x509.X509Certificate(ca.certPem);
  const notAfter = Math.min(now.getTime() + validityMs, caCert.notAfter.getTime());
  const cert = await x509.X509CertificateGenerator.create({
    subject: `CN=${hosts[0] ?? 'hpc-user-operator-webhook'}`,
    issuer: caCert.subject,
    publicKey: keys.publicKey,
    signingKey: await importSigningKey(ca.keyPem),
    notBefore: new Date(now.getTime() - CLOCK_SKEW_MS),
    notAfter: new Date(notAfter),
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(hosts.map((host) => ({ type: isIP(host) === 0 ? 'dns' : 'ip', value: host }))),
      await x509.AuthorityKeyIdentifierExtension.create(caCert),
    ],
  });
  return { cert: pemText(cert.toString('pem')), key: keyPem(keys.privateKey) };
}

/** The SANs of a certificate as `hosts` lists them, sorted. */
function hostsOf(cert: X509Certificate): string[] {
  return (cert.subjectAltName ?? '')
    .split(', ')
    .map((name) => name.replace(/^(DNS|IP Address):/, ''))
    .filter((name) => name !== '')
    .sort();
}

const timeLeft = (cert: X509Certificate, now: Date): number => Date.parse(cert.validTo) - now.getTime();

function parse(material: Partial<CertificateMaterial> | undefined) {
  try {
    const cas = pemBlocks(material?.['ca.crt'] ?? '').map((pem) => ({ pem, cert: new X509Certificate(pem) }));
    const caKey = createPrivateKey(material?.['ca.key'] ?? '');
    const publicDer = createPublicKey(caKey).export({ type: 'spki', format: 'der' });
    const signer = cas.find((ca) => ca.cert.publicKey.export({ type: 'spki', format: 'der' }).equals(publicDer));
    if (signer === undefined) return undefined;
    const serving = material?.['tls.crt'] === undefined ? undefined : new X509Certificate(material['tls.crt']);
    const servingKeyMatches = serving !== undefined && serving.checkPrivateKey(createPrivateKey(material?.['tls.key'] ?? ''));
    return { cas, signer, signerKeyPem: material?.['ca.key'] ?? '', serving: servingKeyMatches ? serving : undefined };
  } catch {
    return undefined;
  }
}

/**
 * The material to store next, or undefined when what is stored needs nothing. Missing or
 * unreadable material is replaced whole (first start, or a Secret someone broke).
 */
export async function renewCertificates(
  material: Partial<CertificateMaterial> | undefined,
  policy: CertificatePolicy,
  now: Date,
): Promise<CertificateMaterial | undefined> {
  const parsed = parse(material);
  if (parsed === undefined) {
    const ca = await createCa(now, caValidityMs(policy));
    const serving = await createServing(ca, policy.hosts, now, policy.validityMs);
    return { 'ca.crt': ca.certPem, 'ca.key': ca.keyPem, 'tls.crt': serving.cert, 'tls.key': serving.key };
  }
  let changed = false;
  let signer: IssuedCa = { certPem: parsed.signer.pem, keyPem: parsed.signerKeyPem };
  let signerCert = parsed.signer.cert;
  let bundle = parsed.cas.filter((ca) => Date.parse(ca.cert.validTo) > now.getTime()).map((ca) => ca.pem);
  if (bundle.length !== parsed.cas.length) changed = true;

  if (timeLeft(signerCert, now) < 4 * renewBeforeMs(policy)) {
    signer = await createCa(now, caValidityMs(policy));
    signerCert = new X509Certificate(signer.certPem);
    bundle = [signer.certPem, ...bundle];
    changed = true;
  }

  const serving = parsed.serving;
  const signerSettled = now.getTime() - (Date.parse(signerCert.validFrom) + CLOCK_SKEW_MS) >= caOverlapMs(policy);
  const usable =
    serving !== undefined &&
    Date.parse(serving.validTo) > now.getTime() &&
    hostsOf(serving).join(',') === [...policy.hosts].sort().join(',') &&
    bundle.some((pem) => serving.checkIssued(new X509Certificate(pem)));
  // Due renewals wait for a new CA to settle: renewBefore outlasts the overlap.
  const due = serving === undefined || timeLeft(serving, now) < renewBeforeMs(policy) || !serving.checkIssued(signerCert);
  const reissue = !usable || (due && signerSettled);
  let tls = { cert: material?.['tls.crt'] ?? '', key: material?.['tls.key'] ?? '' };
  if (reissue) {
    tls = await createServing(signer, policy.hosts, now, policy.validityMs);
    changed = true;
  }
  return changed ? { 'ca.crt': bundle.map(pemText).join(''), 'ca.key': signer.keyPem, 'tls.crt': tls.cert, 'tls.key': tls.key } : undefined;
}
