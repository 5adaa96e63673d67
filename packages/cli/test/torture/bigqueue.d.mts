// Types of bigqueue.mjs (plain JavaScript, shared with scripts/bigqueue.mjs).
import type { ChildProcess } from "node:child_process";
export const PAYLOAD_BYTES: number;
export interface BigQueueOptions {
  readonly messages?: number;
  readonly window?: number;
  readonly maxInflight?: number;
  readonly queueWindow?: number;
  readonly synchronous?: "full" | "normal";
  readonly sampleMs?: number;
  readonly log?: (line: string) => void;
  readonly nodeArgs?: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  readonly afterEnqueue?: (broker: { readonly child: ChildProcess; readonly pid: number }) => Promise<void>;
  readonly keepDir?: boolean;
}
export interface BigQueueReport {
  readonly messages: number;
  readonly payloadBytes: number;
  readonly config: Readonly<Record<string, unknown>>;
  readonly window: number;
  readonly sessionPresent: boolean;
  readonly received: number;
  readonly outOfOrder: number;
  readonly duplicates: number;
  readonly firstError: string | undefined;
  readonly enqueueSeconds: number;
  readonly enqueueRate: number;
  readonly drainSeconds: number;
  readonly drainRate: number;
  readonly idleRss: number | undefined;
  readonly rssAfterEnqueue: number | undefined;
  readonly rssAfterDrain: number | undefined;
  readonly peakRss: number;
  /** The broker's VmHWM (bytes) at the end of the run; undefined without /proc. */
  readonly vmHwm: number | undefined;
  readonly samples: readonly { readonly phase: string; readonly t: number; readonly rss: number; readonly hwm: number }[];
}
export function runBigQueue(options?: BigQueueOptions): Promise<BigQueueReport>;
export function bigQueueSummary(report: BigQueueReport): string;
