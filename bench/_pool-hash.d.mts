/** Types of bench/_pool-hash.mjs. */
export declare function sha256Rounds(rounds: number): string;
