export * from "./packets.js";
