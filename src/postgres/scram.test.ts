import { describe, expect, it } from 'vitest';
import { passwordDigest, passwordMatches, scramVerifier, verifierComputable } from './scram.js';

describe('SCRAM-SHA-256 verifiers', () => {
  // The integration test (test/integration/passwords.test.ts) checks them against a real server.
  it('has the shape pg_authid stores and checks a password against it', () => {
    const salt = Buffer.from('c2FsdHNhbHRzYWx0c2FsdA==', 'base64');
    const v = scramVerifier('secret', salt, 4096);
    expect(v).toMatch(/^SCRAM-SHA-256\$4096:c2FsdHNhbHRzYWx0c2FsdA==\$[A-Za-z0-9+/=]{44}:[A-Za-z0-9+/=]{44}$/);
    expect(passwordMatches(v, 'secret', 'u')).toBe(true);
    expect(passwordMatches(v, 'Secret', 'u')).toBe(false);
  });

  it('uses a fresh salt each time', () => {
    expect(scramVerifier('x')).not.toBe(scramVerifier('x'));
  });

  it('checks MD5 hashes and refuses what it cannot read', () => {
    expect(passwordMatches('md553f48b7c4b76a86ce72276c5755f217d', 'secret', 'postgres')).toBe(true);
    expect(passwordMatches('md553f48b7c4b76a86ce72276c5755f217d', 'secret', 'other')).toBe(false);
    expect(passwordMatches(null, 'secret', 'postgres')).toBe(false);
    expect(passwordMatches('SCRAM-SHA-256$0:AA==$AA==:AA==', 'secret', 'postgres')).toBe(false);
    expect(passwordMatches('plaintext', 'plaintext', 'postgres')).toBe(false);
  });

  it('computes verifiers only for printable ASCII (SASLprep is the identity there)', () => {
    expect(verifierComputable('aZ09-_~ !')).toBe(true);
    expect(verifierComputable('pässword')).toBe(false);
    expect(verifierComputable('tab\there')).toBe(false);
  });

  it('digests passwords as lowercase hex SHA-256', () => {
    expect(passwordDigest('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });
});
