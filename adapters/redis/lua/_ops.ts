/**
 * The op codes of the queue script: the one source both the Lua dispatch and the call builder
 * (`_call.ts`) take them from. Each op's arguments and reply are in the header of its fragment.
 *
 * @module
 */

/** Op codes of the queue script, by name. */
export const OP = {
  /** Sends a message, (re)creating the run record; with an idempotency key, only if unclaimed. (enqueue.ts) */
  enqueue: "E",
  /** Leases due messages, starting their runs. (receive.ts) */
  receive: "Q",
  /** Acks a leased message. (settle.ts) */
  ack: "A",
  /** Acks and records a success in one step. (settle.ts) */
  succeed: "O",
  /** Acks, records a failed attempt and sends the next attempt in one step. (settle.ts) */
  retry: "Y",
  /** Extends a lease. (lease.ts) */
  renew: "N",
  /** Gives a leased message back to the front of its priority. (lease.ts) */
  release: "F",
  /** Removes a message that was not delivered yet. (lease.ts) */
  cancel: "C",
  /** Updates a run record, guarded by its state. (record.ts) */
  update: "U",
  /** Reads a run record. (record.ts) */
  get: "G",
  /** Reads a run record and marks it watched. (record.ts) */
  watch: "W",
  /** Announces a watched run's end. (record.ts) */
  notify: "P",
  /** Adds a dead letter. (dead-letters.ts) */
  deadAdd: "X",
  /** Lists dead letters, newest first. (dead-letters.ts) */
  deadList: "XL",
  /** Removes and returns a dead letter. (dead-letters.ts) */
  deadTake: "XT",
  /** Deletes a dead letter. (dead-letters.ts) */
  deadDelete: "XD",
  /** Deletes every dead letter of the queue. (dead-letters.ts) */
  deadPurge: "XP",
  /** Reads the run an idempotency key maps to. (idempotency.ts) */
  owner: "I",
  /** Maps an idempotency key to a run. (idempotency.ts) */
  own: "K",
  /** Takes the run-time claim of a key unless another holder has it. (idempotency.ts) */
  claim: "L",
  /** Frees a claim when the holder still has it. (idempotency.ts) */
  unclaim: "R",
  /** The queue's counts. (admin.ts) */
  counts: "S",
  /** Pauses or resumes the queue. (admin.ts) */
  pause: "PA",
  /** Removes waiting and delayed messages sent before the purge began. (admin.ts) */
  purge: "PU",
  /** A page of the queue's messages. (admin.ts) */
  list: "LS",
} as const;

/** An op code. */
export type OpCode = (typeof OP)[keyof typeof OP];
