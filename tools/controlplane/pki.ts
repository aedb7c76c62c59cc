// Key material for a test control plane: a CA, the kube-apiserver's serving certificate, an
// admin client certificate in system:masters, and the service-account signing key pair.
// Node cannot issue X.509 certificates, so the certificates come from the openssl CLI.
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface ControlPlanePki {
  caCert: string;
  servingCert: string;
  servingKey: string;
  adminCert: string;
  adminKey: string;
  serviceAccountPublicKey: string;
  serviceAccountPrivateKey: string;
}

const validDays = '3650';
const ecKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

function openssl(args: string[]): void {
  try {
    execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (error) {
    throw new Error(`openssl ${args[0] ?? ''} failed (is the openssl CLI installed?)`, { cause: error });
  }
}

function issueLeaf(dir: string, name: string, caCert: string, caKey: string, subject: string, extensions: string[]) {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  const addext = ['basicConstraints=critical,CA:FALSE', ...extensions].flatMap((ext) => ['-addext', ext]);
  openssl(['req', '-x509', '-CA', caCert, '-CAkey', caKey, ...ecKey, '-keyout', key, '-out', cert,
    '-days', validDays, '-subj', subject, ...addext]);
  return { cert, key };
}

/** Writes fresh key material into `dir` and returns the file paths. */
export function createPki(dir: string): ControlPlanePki {
  const caCert = join(dir, 'ca.crt');
  const caKey = join(dir, 'ca.key');
  openssl(['req', '-x509', ...ecKey, '-keyout', caKey, '-out', caCert, '-days', validDays,
    '-subj', '/CN=hpc-user-operator-test-ca']);

  const serving = issueLeaf(dir, 'apiserver', caCert, caKey, '/CN=kube-apiserver', [
    'subjectAltName=DNS:localhost,IP:127.0.0.1',
    'extendedKeyUsage=serverAuth',
  ]);
  // The apiserver maps a client certificate's CN to the user and O to its groups.
  const admin = issueLeaf(dir, 'admin', caCert, caKey, '/O=system:masters/CN=admin', ['extendedKeyUsage=clientAuth']);

  const serviceAccount = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  const serviceAccountPublicKey = join(dir, 'service-account.pub');
  const serviceAccountPrivateKey = join(dir, 'service-account.key');
  writeFileSync(serviceAccountPublicKey, serviceAccount.publicKey);
  writeFileSync(serviceAccountPrivateKey, serviceAccount.privateKey, { mode: 0o600 });

  return {
    caCert,
    servingCert: serving.cert,
    servingKey: serving.key,
    adminCert: admin.cert,
    adminKey: admin.key,
    serviceAccountPublicKey,
    serviceAccountPrivateKey,
  };
}
