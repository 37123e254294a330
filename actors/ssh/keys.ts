import ssh2 from 'ssh2';

/** Parses a key (private key text, or an OpenSSH public key line), naming what was wrong. */
export function parseKey(text: string, what: string): ssh2.ParsedKey {
  const parsed = ssh2.utils.parseKey(text);
  if (parsed instanceof Error) throw new Error(`${what}: ${parsed.message}`);
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!key) throw new Error(`${what}: no key found`);
  return key;
}

/** The SSH wire blob of a key's public half: what both ends compare. */
export function publicKeyBlob(text: string): Buffer {
  return parseKey(text, 'public key').getPublicSSH();
}

/**
 * A new ed25519 key pair as OpenSSH private key text and public key line.
 * About one key in 256 from ssh2's generator cannot be read back by its own
 * parser (mscdex/ssh2#1390), so a pair is kept only once both halves parse.
 */
export function generateKeyPair(comment: string): { privateKey: string; publicKey: string } {
  for (;;) {
    const { private: privateKey, public: publicKey } = ssh2.utils.generateKeyPairSync('ed25519', { comment });
    if (!(ssh2.utils.parseKey(privateKey) instanceof Error) && !(ssh2.utils.parseKey(publicKey) instanceof Error)) return { privateKey, publicKey };
  }
}
