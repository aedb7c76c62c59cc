import { percentEncode } from './signature.js';

/**
 * Provider text (a `message` of a refusal) is the provider's to choose and may quote what it
 * was sent. Before it reaches a status, an event or a log line it loses the secret in every
 * encoding a request or a provider could give it, and anything shaped like a signature or a
 * key: a long run of base64, base64url or percent-encoded characters.
 */
const REDACTED = '[redacted]';
/** An HMAC-SHA256 in base64 is 44 characters; ids the provider names (hpc-qig9xu97) are short. */
const OPAQUE_TOKEN = /[A-Za-z0-9+/_%-]{24,}=*/g;
// eslint-disable-next-line no-control-regex -- a message is one line of printable text
const CONTROL = /[\u0000-\u001f\u007f]+/g;

/** The secret as it could appear in text: plain, URL-encoded (once, twice, form-style), base64, hex. */
function encodingsOf(secret: string): string[] {
  const bytes = Buffer.from(secret, 'utf8');
  const once = percentEncode(secret);
  const forms = [
    secret,
    once,
    percentEncode(once),
    encodeURIComponent(secret),
    encodeURIComponent(secret).replaceAll('%20', '+'),
    bytes.toString('base64'),
    bytes.toString('base64').replace(/=+$/, ''),
    bytes.toString('base64url'),
    bytes.toString('hex'),
  ];
  // Longest first, so that a longer form is not left half-replaced by a shorter one.
  return [...new Set(forms.filter((form) => form !== ''))].sort((a, b) => b.length - a.length);
}

export function scrubProviderText(text: string, secret: string): string {
  let scrubbed = text;
  for (const form of encodingsOf(secret)) {
    scrubbed = scrubbed.replaceAll(form, REDACTED);
    scrubbed = scrubbed.replaceAll(form.toLowerCase(), REDACTED);
  }
  return scrubbed.replace(OPAQUE_TOKEN, REDACTED).replace(CONTROL, ' ');
}
