/**
 * A module that exports no celeriac app, for the CLI's load error test.
 *
 * @module
 */
export const answer = 42;
export default { name: "not an app" };
