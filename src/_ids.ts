/**
 * Internal: run ids. Each id is 8 random URL-safe characters, the first a letter or digit (so ids
 * differ from their first characters on, as people read and shorten them), then a random 96-bit
 * prefix per process and a counter, which make it unique across processes and machines. Built as two flat strings from a
 * pool of random bytes: a UUID costs Node many string pieces per id. Randomness is drawn on first
 * use, never at module load (edge runtimes forbid it there).
 *
 * @module
 */

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const CODES = Array.from(ALPHABET, (c) => c.charCodeAt(0));
const POOL = 4096;
const pool = new Uint8Array(POOL);
let at = POOL;
let prefix = "";
let counter = 0;

function char(): number {
  return CODES[pool[at++]! & 63]!;
}

/** A new run id: 8 random characters, a per-process prefix of 16, a base-36 counter. */
export function newRunId(): string {
  if (at + 8 > POOL) {
    crypto.getRandomValues(pool);
    at = 0;
    if (prefix === "") {
      const codes: number[] = [];
      for (let i = 0; i < 16; i++) codes.push(char());
      prefix = String.fromCharCode(...codes);
    }
  }
  // The first is a letter or digit (62 of the 64): an id starting with "-" reads as an option on a
  // command line (`celeriac dlq show <id>`).
  const first = CODES[pool[at++]! % 62]!;
  const head = String.fromCharCode(first, char(), char(), char(), char(), char(), char(), char());
  return `${head}${prefix}${(++counter).toString(36)}`;
}
