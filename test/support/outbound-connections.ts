import { isIPv4, isIPv6, Socket } from "node:net";

/**
 * Records every TCP connection this process starts, and refuses the ones to anything but
 * loopback before they reach the network (no DNS query, no SYN): the workplace allows test
 * traffic to loopback only, so a regression must fail the test without also breaking that rule.
 *
 * It wraps `net.Socket.prototype.connect`, which every client path ends in: `net.connect`,
 * `tls.connect` (a TLSSocket is a Socket), the http/https agents and undici (`fetch`).
 */

export interface OutboundConnection {
  /** As asked for: an IP address or a host name (`localhost` when none was given). */
  readonly host: string;
  readonly port: number | undefined;
  readonly loopback: boolean;
}

export interface ConnectionRecorder {
  readonly connections: readonly OutboundConnection[];
  /** Connections that were refused because they were not to loopback. */
  nonLoopback(): OutboundConnection[];
  /** Puts the original `connect` back. */
  restore(): void;
}

type Connect = (this: Socket, ...args: unknown[]) => Socket;

let installed = false;

export function isLoopbackHost(host: string): boolean {
  const bare = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
  if (bare.toLowerCase() === "localhost") return true;
  if (isIPv4(bare)) return bare.startsWith("127.");
  if (isIPv6(bare)) {
    const lower = bare.toLowerCase();
    return lower === "::1" || lower === "0:0:0:0:0:0:0:1" || lower.startsWith("::ffff:127.");
  }
  return false;
}

export function recordOutboundConnections(): ConnectionRecorder {
  if (installed)
    throw new Error("recordOutboundConnections() is already active in this process; restore() the first recorder.");
  installed = true;
  const connections: OutboundConnection[] = [];
  // Taken unbound on purpose: the wrapper calls it with the socket as `this`.
  // eslint-disable-next-line @typescript-eslint/unbound-method
  const original = Socket.prototype.connect as unknown as Connect;

  const wrapped: Connect = function (this: Socket, ...args: unknown[]): Socket {
    const target = describe(args);
    if (target === undefined) return original.apply(this, args); // IPC (Unix socket / named pipe): local by nature
    connections.push(target);
    if (!target.loopback) {
      this.destroy(
        new Error(`Test refused a connection to ${target.host}:${String(target.port)} (only loopback is allowed).`),
      );
      return this;
    }
    return original.apply(this, args);
  };
  Socket.prototype.connect = wrapped;

  return {
    connections,
    nonLoopback: () => connections.filter((c) => !c.loopback),
    restore() {
      Socket.prototype.connect = original;
      installed = false;
    },
  };
}

/** The target of a `connect` call, or undefined for IPC. Mirrors the argument forms Node accepts. */
function describe(args: readonly unknown[]): OutboundConnection | undefined {
  // net.connect() and tls.connect() pass their normalised arguments as one array: [options, callback].
  const first = Array.isArray(args[0]) ? (args[0] as unknown[])[0] : args[0];
  let host: unknown;
  let port: unknown;
  if (typeof first === "object" && first !== null) {
    const options = first as { host?: unknown; port?: unknown; path?: unknown };
    if (typeof options.path === "string" && options.path !== "") return undefined;
    host = options.host;
    port = options.port;
  } else if (typeof first === "string" && !/^\d+$/.test(first)) {
    return undefined; // connect(path)
  } else {
    port = first;
    host = typeof args[1] === "string" ? args[1] : undefined;
  }
  const name = typeof host === "string" && host !== "" ? host : "localhost";
  const portNumber = typeof port === "number" ? port : typeof port === "string" ? Number(port) : undefined;
  return { host: name, port: portNumber, loopback: isLoopbackHost(name) };
}
