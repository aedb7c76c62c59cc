import { describe, expect, it } from '@jest/globals';
import { scrubProviderText } from '../../src/provider/scrub.js';
import { computeSignature, encodeSignatureParam, percentEncode } from '../../src/provider/signature.js';

const SECRET = 'my secret/key+1=';

describe('scrubProviderText', () => {
  it.each([
    ['the secret', SECRET],
    ['the secret percent-encoded', percentEncode(SECRET)],
    ['the secret percent-encoded twice', percentEncode(percentEncode(SECRET))],
    ['the secret form-encoded', encodeURIComponent(SECRET).replaceAll('%20', '+')],
    ['the secret in base64', Buffer.from(SECRET).toString('base64')],
    ['the secret in hex', Buffer.from(SECRET).toString('hex')],
    ['a signature', computeSignature('another-key', 'GET\n/api/user/\nq\nmd5')],
    ['a signature as sent', encodeSignatureParam(computeSignature('another-key', 'x'))],
  ])('removes %s', (_name, leaked) => {
    const scrubbed = scrubProviderText(`refused: ${leaked} is wrong`, SECRET);
    expect(scrubbed).not.toContain(leaked);
    expect(scrubbed).toMatch(/^refused: .*\[redacted\].* is wrong$/);
  });

  it('keeps the words, ids and numbers of an ordinary message, on one line', () => {
    expect(scrubProviderText('get hpc cluster[hpc-qig9xu97] user failed\nret 5000', SECRET)).toBe('get hpc cluster[hpc-qig9xu97] user failed ret 5000');
  });
});
