// Aedes (npm `aedes`, in-memory persistence, its defaults) on a plain TCP server, for the
// end-to-end benchmark: `node bench/e2e/aedes-server.mjs PORT`. Prints "listening" when ready.
import net from "node:net";
import { Aedes } from "aedes";

const port = Number(process.argv[2] ?? 1883);
const aedes = await Aedes.createBroker();
const server = net.createServer(aedes.handle);
server.listen(port, "127.0.0.1", () => console.log(`listening ${port}`));
const stop = () => {
  server.close();
  aedes.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
