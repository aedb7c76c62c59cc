import { describe, expect, it } from '@jest/globals';
import {
  canonicalQuery,
  computeSignature,
  encodeSignatureParam,
  percentEncode,
  signQuery,
  stringToSign,
  verifySignedQuery,
} from '../../src/provider/signature.js';

// The provider's worked example, parameters before signing.
const EXAMPLE_PARAMS = {
  zone: 'jinan1a',
  version: '1',
  timestamp: '2021-08-19T16:44:40Z',
  signature_version: '1',
  signature_method: 'HmacSHA256',
  access_key_id: 'QYACCESSKEYIDEXAMPLE',
};
const EXAMPLE_QUERY =
  'access_key_id=QYACCESSKEYIDEXAMPLE&signature_method=HmacSHA256&signature_version=1&timestamp=2021-08-19T16%3A44%3A40Z&version=1&zone=jinan1a';

describe('percentEncode (RFC 3986, upper-case hex)', () => {
  it.each([
    ['a space', 'a b', 'a%20b'],
    ['tilde stays', 'a~b', 'a~b'],
    ['unreserved stay', 'AZaz09-_.', 'AZaz09-_.'],
    ['asterisk', 'a*b', 'a%2Ab'],
    ['colon', '16:44:40', '16%3A44%3A40'],
    ['slash', '/public/x', '%2Fpublic%2Fx'],
    ['plus', 'a+b', 'a%2Bb'],
    ["sub-delims encodeURIComponent keeps", "!'()", '%21%27%28%29'],
    ['equals and ampersand', 'a=b&c', 'a%3Db%26c'],
    ['two-byte UTF-8', 'é', '%C3%A9'],
    ['three-byte UTF-8', '化学', '%E5%8C%96%E5%AD%A6'],
    ['four-byte UTF-8', '😀', '%F0%9F%98%80'],
    ['percent itself', '100%', '100%25'],
  ])('%s', (_name, input, expected) => {
    expect(percentEncode(input)).toBe(expected);
  });
});

describe('canonicalQuery', () => {
  it('reproduces the provider example', () => {
    expect(canonicalQuery(EXAMPLE_PARAMS)).toBe(EXAMPLE_QUERY);
  });

  it('sorts names in byte order (upper case before lower, prefix first)', () => {
    expect(canonicalQuery({ b: '1', a_b: '2', ab: '3', a: '4', B: '5' })).toBe('B=5&a=4&a_b=2&ab=3&b=1');
  });

  it('leaves out signature and encodes names and values', () => {
    expect(canonicalQuery({ signature: 'x', search_word: 'chem lab', 'odd name': 'a+b' })).toBe(
      'odd%20name=a%2Bb&search_word=chem%20lab',
    );
  });
});

describe('stringToSign', () => {
  it('signs the path with a trailing slash and the MD5 of the empty body', () => {
    expect(stringToSign('get', '/api/user', 'a=1')).toBe('GET\n/api/user/\na=1\nd41d8cd98f00b204e9800998ecf8427e');
  });

  it('does not double a trailing slash that is already there', () => {
    expect(stringToSign('GET', '/api/user/', 'a=1').split('\n')[1]).toBe('/api/user/');
  });

  it('hashes a non-empty body', () => {
    expect(stringToSign('POST', '/x', '', 'abc').split('\n')[3]).toBe('900150983cd24fb0d6963f7d28e17f72');
  });
});

describe('signature', () => {
  it('is Base64 HMAC-SHA256 (vector computed with openssl)', () => {
    const toSign = stringToSign('GET', '/api/user', EXAMPLE_QUERY);
    expect(computeSignature('SECRETACCESSKEY', toSign)).toBe('CVjrE+fQsAficUsjpsQyuWgJVQH0PE3d1+eZsiX0ArQ=');
  });

  it('is URL-encoded twice, as the provider sample does', () => {
    expect(encodeSignatureParam('ab/c+d=')).toBe('ab%252Fc%252Bd%253D');
  });

  it('goes last in the signed query', () => {
    expect(signQuery('GET', '/api/user', EXAMPLE_PARAMS, 'SECRETACCESSKEY')).toBe(
      `${EXAMPLE_QUERY}&signature=CVjrE%252BfQsAficUsjpsQyuWgJVQH0PE3d1%252BeZsiX0ArQ%253D`,
    );
  });

  it('verifies what signQuery produced and refuses a singly-encoded signature', () => {
    const secretFor = (id: string) => (id === 'QYACCESSKEYIDEXAMPLE' ? 'SECRETACCESSKEY' : undefined);
    const signed = signQuery('GET', '/api/user', { ...EXAMPLE_PARAMS, search_word: 'a b~*:/+é' }, 'SECRETACCESSKEY');
    expect(verifySignedQuery('GET', '/api/user', signed, secretFor)).toMatchObject({ ok: true });
    const singlyEncoded = signed.replace(/signature=(.*)$/, (_m, sig: string) => `signature=${decodeURIComponent(sig)}`);
    expect(verifySignedQuery('GET', '/api/user', singlyEncoded, secretFor)).toMatchObject({
      ok: false,
      reason: 'bad-signature',
    });
  });
});
