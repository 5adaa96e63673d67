// @harbormq/broker: the driver around the pure core, the Transport / Store ports and createBroker().
export type * from "./ports.js";
export type * from "./hooks.js";
export { Driver, monotonicNow } from "./driver.js";
export type { Codec, Core, DecodeFailure, DriverOptions, DriverStats, PacketDecoder } from "./driver.js";
export { checkOptions, resolveConfig } from "./options.js";
export { MemoryStore } from "./memory-store.js";
export { bindServer, type BindableServer } from "./bind.js";
export { createBroker, codec } from "./create-broker.js";
export type { BrokerOptions, HarborBroker, TransportAddress } from "./create-broker.js";
