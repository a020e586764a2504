/**
 * The version of celeriac this is (kept equal to package.json's by a test).
 *
 * @module
 */

/** The celeriac version, as workers report it. */
export const VERSION = "0.1.0";
