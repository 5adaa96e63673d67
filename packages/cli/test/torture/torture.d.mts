// Types of torture.mjs (plain JavaScript, shared with scripts/torture.mjs).
export interface TortureOptions {
  readonly cycles?: number;
  readonly seed?: number;
  readonly log?: (line: string) => void;
  readonly window?: number;
  readonly maxBacklog?: number;
  readonly maxInflight?: number;
  readonly killAfterMs?: readonly [number, number];
  readonly synchronous?: "full" | "normal";
  readonly memory?: boolean;
  readonly stallMs?: number;
  readonly subscribers?: number;
  readonly keepDir?: boolean;
}
export interface TortureReport {
  readonly seed: number;
  readonly cycles: number;
  readonly seconds: number;
  readonly published: number;
  readonly accepted: number;
  readonly qos1: number;
  readonly qos2: number;
  /** distinct messages received by the slowest subscriber */
  readonly delivered: number;
  readonly subscribers: number;
  readonly lost: readonly number[];
  readonly unaccepted: readonly number[];
  readonly kills: readonly { readonly accepted: number; readonly delivered: number; readonly unacked: number }[];
  readonly publisherConnections: number;
  readonly subscriberConnections: number;
  readonly drainError: string | undefined;
  readonly violations: readonly string[];
  readonly pubResends: number;
  readonly pubrelResends: number;
  readonly subDrops: number;
  readonly qos2Resends: number;
  readonly qos2Duplicates: number;
  readonly qos1Resends: number;
  readonly qos1Repeats: number;
  readonly qos1Unexplained: number;
  readonly inversions: number;
  /** extra kills of a restarting broker (before or just after it listens) */
  readonly startupKills: number;
}
export function prng(seed: number): { next(): number; int(min: number, max: number): number; chance(p: number): boolean };
export function runTorture(options?: TortureOptions): Promise<TortureReport>;
export function summary(report: TortureReport): string;
