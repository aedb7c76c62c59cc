// A self-signed certificate for 127.0.0.1, valid 2000-2100, and its key: for the tiny https
// servers of unit tests only.
import { readFileSync } from 'node:fs';

const fixture = (name: string) => readFileSync(new URL(`../fixtures/tls/${name}`, import.meta.url), 'utf8');

export const TEST_CERT = fixture('server.crt');
export const TEST_KEY = fixture('server.key');
