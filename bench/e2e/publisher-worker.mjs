// Fan-in publishers in a worker thread (scenarios.mjs fanIn with threads > 1): the main thread
// keeps the subscriber and grants each publisher credit as its messages arrive, so the window
// "sent but not yet received" holds across threads. Messages: in {credit: [i, n]}, out
// {acked: n} (QoS 1 PUBACKs since the last report) and {ready}.
import { parentPort, workerData } from "node:worker_threads";
import { Client } from "./client.mjs";

const { port, ids, per, qos, window } = workerData;
const pubs = new Map();
const sent = new Map();
const credit = new Map();
let acked = 0;
let reportScheduled = false;

function payload(seq) {
  const b = Buffer.alloc(64);
  b.writeUInt32BE(seq, 0);
  return b;
}

function pump(i) {
  const c = pubs.get(i);
  let s = sent.get(i);
  const limit = Math.min(per, credit.get(i));
  const topic = `bench/in/${i}`;
  while (s < limit) c.publish(topic, payload(s++), qos);
  sent.set(i, s);
}

for (const i of ids) {
  const c = await Client.connect(port, { clientId: `fanin-pub-${i}` });
  c.onPuback = () => {
    acked++;
    if (!reportScheduled) {
      reportScheduled = true;
      setImmediate(() => {
        reportScheduled = false;
        parentPort.postMessage({ acked });
        acked = 0;
      });
    }
  };
  pubs.set(i, c);
  sent.set(i, 0);
  credit.set(i, window);
}

parentPort.on("message", (m) => {
  if (m.start) for (const i of ids) pump(i);
  else if (m.credit) {
    const [i, n] = m.credit;
    credit.set(i, credit.get(i) + n);
    pump(i);
  } else if (m.stop) {
    for (const c of pubs.values()) c.destroy();
    parentPort.close();
  }
});
parentPort.postMessage({ ready: true });
