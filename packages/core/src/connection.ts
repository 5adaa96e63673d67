// One network connection's state machine: which packet is legal in which state, as one table
// (h11's _state.py). The broker looks a step up here and carries it out.
import type { ConnectPacket, Packet, PacketType, ProtocolVersion, Will } from "@harbormq/codec";
import type { ConnId, Millis, OpId } from "./api.js";
import type { Session } from "./session.js";

export type ConnState =
  /** Opened, no CONNECT yet. */
  | "awaiting-connect"
  /** CONNECT received, waiting for the `authed` answer of the authentication hook. */
  | "authenticating"
  /** CONNACK 0 sent; the session is attached. */
  | "connected"
  /** A `close` was emitted or the socket was lost; everything further is ignored. */
  | "closed";

export type Step =
  /** Handle as the CONNECT of this connection. */
  | "connect"
  /** Protocol violation: close with 0x82 (the will goes out if the connection was accepted). */
  | "violation"
  /** Hold in order until the pending hook answers ([MQTT-3.1.4-5]: dropped if the CONNECT is refused). */
  | "buffer"
  /** Handle now (or buffer if an authorisation hook is pending on this connection). */
  | "dispatch"
  | "ignore";

const all = (step: Step): Record<PacketType, Step> => ({
  connect: step,
  connack: step,
  publish: step,
  puback: step,
  pubrec: step,
  pubrel: step,
  pubcomp: step,
  subscribe: step,
  suback: step,
  unsubscribe: step,
  unsuback: step,
  pingreq: step,
  pingresp: step,
  disconnect: step,
  auth: step,
});

/** TRANSITIONS[state][packet type]. */
export const TRANSITIONS: Readonly<Record<ConnState, Readonly<Record<PacketType, Step>>>> = {
  // [MQTT-3.1.0-1] the first packet from the client must be CONNECT.
  "awaiting-connect": { ...all("violation"), connect: "connect" },
  // [MQTT-3.1.0-2] a second CONNECT is a violation, even while the first is being authenticated.
  authenticating: { ...all("buffer"), connect: "violation", connack: "violation", suback: "violation", unsuback: "violation", pingresp: "violation" },
  connected: {
    ...all("dispatch"),
    connect: "violation", // [MQTT-3.1.0-2]
    // Server-to-client packets are violations when a client sends them ([MQTT-4.8.0-1]).
    connack: "violation",
    suback: "violation",
    unsuback: "violation",
    pingresp: "violation",
    // Enhanced authentication (MQTT 5 AUTH) is not supported yet.
    auth: "violation",
  },
  closed: all("ignore"),
};

export function stepFor(state: ConnState, packet: Packet): Step {
  return TRANSITIONS[state][packet.type];
}

/** The broker's view of one connection. */
export class Connection {
  state: ConnState = "awaiting-connect";
  version: ProtocolVersion = 4;
  clientId: string | undefined = undefined;
  session: Session | undefined = undefined;
  keepAlive = 0;
  lastActivity: Millis;
  /** [MQTT-3.1.2-8] the will held for this connection until published or discarded. */
  will: Will | undefined = undefined;
  /** Packets received while a hook (authenticate / authorize) is pending, in order. */
  readonly buffer: Packet[] = [];
  /** The hook op this connection waits for, if any. */
  waitingOp: OpId | undefined = undefined;
  /** The last persist op holding acknowledgements for this connection (acks go out in order). */
  lastAckOp: OpId = 0;
  /** MQTT 5 Maximum Packet Size of the client (CONNECT property); undefined: no limit but the protocol's. */
  maxPacketSize: number | undefined = undefined;
  /** MQTT 5 topic aliases the client defined on this connection ([MQTT-3.3.2-7]: never carried
   *  to another one); allocated on first use. */
  topicAliases: Map<number, string> | undefined = undefined;
  /** The CONNECT being authenticated. */
  connect: ConnectPacket | undefined = undefined;
  /** The driver reported the socket gone: closing it again is not asked for. */
  socketGone = false;

  constructor(
    readonly id: ConnId,
    readonly remote: string,
    openedAt: Millis,
  ) {
    this.lastActivity = openedAt;
  }
}
