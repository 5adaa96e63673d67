// Types of the parts of broker-process.mjs (plain JavaScript, shared with scripts/) that the
// TypeScript e2e harness reuses.
/** The repository root and the built CLI. */
export declare const root: string;
export declare const mainJs: string;
/** The Node on PATH outside node_modules/.bin (the one better-sqlite3 was built for). */
export declare const nodeBinary: string;
/** Throws when the CLI has not been built. */
export declare function assertBuilt(): void;
/** A port nobody listens on right now (bind 0, read it, release it). */
export declare function freePort(): Promise<number>;
