// The consumer's task module: hashes in its thread, or spins for ever on the attempts asked.
import { createHash } from "node:crypto";

export function run(input, ctx) {
  if (input.hangOn.includes(ctx.attempt)) for (;;);
  let digest = "";
  for (let i = 0; i < input.rounds; i++) digest = createHash("sha256").update(digest).digest("hex");
  return { digest, threadId: ctx.threadId, attempt: ctx.attempt };
}
