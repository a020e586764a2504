/**
 * Internal: a yes/no question on the terminal. The answer is no unless it starts with y; Ctrl-C
 * interrupts (exit 130), end of input is no.
 *
 * @module
 */
import process from "node:process";
import { createInterface } from "node:readline";
import { InterruptedError } from "./_exit.ts";

/** True when a question can be asked: stdin is a terminal. */
export function canAsk(): boolean {
  return process.stdin.isTTY === true;
}

/** Asks `question [y/N]` on stderr and resolves to true for an answer starting with y. */
export function confirm(question: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
    let settled = false;
    const finish = (value: boolean | Error) => {
      if (settled) return;
      settled = true;
      rl.close();
      if (value instanceof Error) reject(value);
      else resolve(value);
    };
    rl.on("SIGINT", () => {
      process.stderr.write("\n");
      finish(new InterruptedError("interrupted"));
    });
    rl.on("close", () => finish(false));
    rl.question(`${question} [y/N] `, (answer) => finish(/^\s*y/i.test(answer)));
  });
}
