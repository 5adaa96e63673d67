// The randomized crash walk shared by crash-fuzz.test.ts and persist-edges.test.ts: a persistent
// subscriber's broker (core Sim, map store) crashed at random, invariants checked throughout.
import type { Packet, PublishPacket } from "@harbormq/codec";
import { Sim, ack, dec } from "./sim.js";

function rng(seed: number) {
  let x = seed >>> 0 || 1;
  return () => ((x ^= x << 13), (x ^= x >>> 17), (x ^= x << 5), (x >>> 0) / 4294967296);
}

/**
 * One seeded random walk of a persistent subscriber "s" and a publisher "p" through publishes,
 * store confirmations, reads, reconnects and crashes; returns the broken invariants (empty: none).
 * `extended`: also takeovers of the open connection and a random `queueWindowBytes`; `wide` (with
 * it): bigger in-flight windows over tiny queue windows and bounded queues with either overflow
 * policy. `onSim` sees the Sim before the walk (to record its store writes).
 */
export function crashWalk(seed: number, steps: number, v5: boolean, { extended = false, wide = false, onSim }: { extended?: boolean; wide?: boolean; onSim?: (sim: Sim) => void } = {}): string[] {
  const r = rng(seed);
  const errors: string[] = [];
  const cfg = extended
    ? { maxInflight: 1 + Math.floor(r() * (wide ? 10 : 4)), queueWindow: 1 + Math.floor(r() * (wide ? 2 : 6)), queueQos0: r() < 0.3, sendHorizonStep: r() < 0.7 ? 4 + Math.floor(r() * 8) : 2048, queueWindowBytes: r() < 0.5 ? 1 + Math.floor(r() * 12) : 1024 * 1024, ...(wide && r() < 0.6 ? { maxQueuedMessages: 3 + Math.floor(r() * 8), overflowPolicy: r() < 0.5 ? ("drop-oldest" as const) : ("drop-new" as const) } : {}) }
    : { maxInflight: 1 + Math.floor(r() * 4), queueWindow: 1 + Math.floor(r() * 6), queueQos0: r() < 0.3, sendHorizonStep: r() < 0.7 ? 4 + Math.floor(r() * 8) : 2048 };
  const sim = new Sim(cfg, { autoStore: false });
  onSim?.(sim);
  const subQos = Math.floor(r() * 3) as 0 | 1 | 2;
  sim.connect("s", v5 ? { clean: false, version: 5, sessionExpiry: 0xffffffff } : { clean: false });
  sim.subscribe("s", [["t", subQos]]);
  sim.confirmAll();
  sim.connect("p", v5 ? { version: 5 } : {});
  sim.confirmAll();
  let n = 0;
  const sentQos = new Map<string, number>();
  const pIds = new Map<number, string>();
  const acked = new Set<string>();
  const seen = new Map<string, number>();
  const awaiting = new Set<number>(); // s: QoS 2 ids awaiting PUBREL (method B)
  const delivered: string[] = [];
  const lastByQos = new Map<number, number>();
  const log: string[] = [];
  let finalPhase = false;
  const lossy = process.env.LOSSY ? true : process.env.NOLOSSY ? false : seed % 2 === 0;
  const processS = () => {
    for (let guard = 0; guard < 50; guard++) {
      const ps = sim.take("s");
      if (ps.length === 0) return;
      for (const p of ps) {
        if (p.type === "publish") {
          const pl = dec(p.payload);
          log.push(`s<${pl}:q${p.qos}:id${p.packetId}:d${p.dup ? 1 : 0}`);
          const k = seen.get(pl) ?? 0;
          if (p.qos === 0 && k > 0) errors.push(`QoS0 ${pl} twice`);
          if (p.qos === 1 && k > 0 && !p.dup) errors.push(`QoS1 ${pl} repeated without DUP`);
          let deliver = true;
          if (p.qos === 2) {
            if (awaiting.has(p.packetId!)) deliver = false;
            else awaiting.add(p.packetId!);
          }
          if (deliver) {
            if (p.qos === 2 && delivered.includes(pl)) errors.push(`QoS2 ${pl} delivered twice`);
            if (k === 0) {
              const last = lastByQos.get(p.qos) ?? -1;
              if (Number(pl) < last) errors.push(`order: ${pl} after ${last} (QoS ${p.qos})`);
              lastByQos.set(p.qos, Number(pl));
              delivered.push(pl);
            }
            seen.set(pl, k + 1);
          }
          if (finalPhase || r() < 0.85) {
            if (p.qos === 1) sim.send("s", ack("puback", p.packetId!));
            if (p.qos === 2) sim.send("s", ack("pubrec", p.packetId!));
          }
        } else if (p.type === "pubrel") {
          awaiting.delete(p.packetId);
          sim.send("s", ack("pubcomp", p.packetId));
        }
      }
    }
  };
  const processP = () => {
    for (const p of sim.take("p") as Packet[]) {
      if (p.type === "puback") acked.add(pIds.get(p.packetId)!);
      else if (p.type === "pubrec") {
        acked.add(pIds.get(p.packetId)!);
        sim.send("p", ack("pubrel", p.packetId));
      }
    }
  };
  for (let step = 0; step < steps; step++) {
    const x = r();
    if (process.env.TRACE) log.push(`step ${step} x=${x.toFixed(3)} pending=${sim.pendingPersists().length} sOpen=${sim.isOpen("s")}`);
    if (x < 0.35) {
      const q = Math.floor(r() * 3) as 0 | 1 | 2;
      const pl = String(n++);
      sentQos.set(pl, q);
      const id = sim.publish("p", "t", pl, q, v5 && r() < 0.3 ? { properties: { messageExpiryInterval: 1 + Math.floor(r() * 3) } } : undefined);
      if (id !== undefined) pIds.set(id, pl);
      log.push(`p>${pl}:q${q}`);
    } else if (x < 0.65) sim.confirm(true);
    else if (x < 0.9) processS();
    else if (x < 0.92) {
      if (sim.isOpen("s")) { if (lossy) sim.take("s"); sim.drop("s"); log.push("s offline"); }
      else { sim.connect("s", v5 ? { clean: false, version: 5, sessionExpiry: 0xffffffff } : { clean: false }); log.push("s online"); }
    } else if (x < 0.94) {
      if (lossy) sim.take("s");
      if (extended && sim.isOpen("s") && r() < 0.6) {
        sim.connect("s", v5 ? { clean: false, version: 5, sessionExpiry: 0xffffffff } : { clean: false }, true);
        log.push("s takeover");
      } else {
        sim.drop("s");
        sim.connect("s", v5 ? { clean: false, version: 5, sessionExpiry: 0xffffffff } : { clean: false });
        log.push("s reconnect");
      }
    } else if (x < 0.955) {
      sim.advance(1000);
      log.push("+1s");
    } else if (x < 0.97) {
      log.push("CRASH");
      if (lossy) sim.take("s");
      sim.crash();
      if (r() < 0.7) sim.connect("s", v5 ? { clean: false, version: 5, sessionExpiry: 0xffffffff } : { clean: false });
      sim.connect("p", v5 ? { version: 5 } : {});
      pIds.clear();
    }
    processP();
    const st = sim.broker.sessionStats("s");
    const maxQ = (cfg as { maxQueuedMessages?: number }).maxQueuedMessages;
    if (st !== undefined && maxQ !== undefined && st.queued > maxQ) errors.push(`queue ${st.queued} over bound ${maxQ}`);
    const rows = sim.store.queues.get("s")?.size ?? 0;
    if (maxQ !== undefined && sim.pendingPersists().length === 0 && rows > maxQ) errors.push(`store queue ${rows} over bound ${maxQ}`);
  }
  // settle everything and drain
  finalPhase = true;
  sim.confirmAll();
  sim.drop("s");
  sim.connect("s", v5 ? { clean: false, version: 5, sessionExpiry: 0xffffffff } : { clean: false });
  log.push("FINAL");
  for (let k = 0; k < 200; k++) {
    sim.confirmAll();
    processP();
    processS();
  }
  {
    const st = sim.broker.sessionStats("s");
    const rows = sim.store.queues.get("s")?.size ?? 0;
    if (st !== undefined && (st.queued !== 0 || st.queuedBytes !== 0 || st.inflight !== 0 || rows !== 0)) errors.push(`not drained: stats ${JSON.stringify(st)} store rows ${rows}`);
  }
  // final check: acked QoS>=1 messages, if the subscription QoS allows, delivered
  const expiredN = sim.events.filter((e) => e.type === "message-dropped").length;
  for (const pl of acked) if (subQos >= 1 && sentQos.get(pl)! >= 1 && !seen.has(pl) && expiredN === 0) errors.push(`acked ${pl} never delivered`);
  if (errors.length > 0) errors.push(`stats ${JSON.stringify(sim.broker.sessionStats("s"))} store ${JSON.stringify([...(sim.store.queues.get("s") ?? new Map()).values()])} msgs ${JSON.stringify([...sim.store.messages.values()].map((m) => dec(m.payload)))}`);
  if (errors.length > 0) errors.push(`drops ${JSON.stringify(sim.events.filter((e) => e.type === "message-dropped"))}`);
  if (errors.length > 0) errors.push(`cfg ${JSON.stringify(cfg)} subQos ${subQos}`, ...log.slice(-(Number(process.env.LOGN ?? 60))));
  return errors;
}
