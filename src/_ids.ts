/**
 * Internal: run ids. A random 96-bit prefix per process (made on first use: edge runtimes allow
 * no randomness at module load) and a counter, so an id is one short string instead of a UUID's
 * many pieces, and ids stay unique across processes and machines.
 *
 * @module
 */

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
let prefix: string | undefined;
let counter = 0;

/** A new run id: 16 random URL-safe characters, then a counter in base 36. */
export function newRunId(): string {
  if (prefix === undefined) {
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    let text = "";
    for (const byte of bytes) text += ALPHABET[byte & 63];
    prefix = text;
  }
  return `${prefix}${(++counter).toString(36)}`;
}
