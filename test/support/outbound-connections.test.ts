import { once } from "node:events";
import { connect, createServer, type AddressInfo, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { isLoopbackHost, recordOutboundConnections, type ConnectionRecorder } from "./outbound-connections.js";

describe("outbound connection recorder", () => {
  let recorder: ConnectionRecorder | undefined;
  afterEach(() => {
    recorder?.restore();
    recorder = undefined;
  });

  it("tells loopback addresses and names from everything else", () => {
    expect(
      ["127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost", "LOCALHOST", "::ffff:127.0.0.1"].filter(
        (h) => !isLoopbackHost(h),
      ),
    ).toEqual([]);
    expect(
      [
        "169.254.169.254",
        "10.0.0.1",
        "0.0.0.0",
        "::",
        "westus-0.in.applicationinsights.azure.com",
        "localhost.example.com",
        "128.0.0.1",
      ].filter(isLoopbackHost),
    ).toEqual([]);
  });

  it("records a loopback connection and lets it through", async () => {
    const server = createServer((socket) => socket.end("hello"));
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const { port } = server.address() as AddressInfo;
    recorder = recordOutboundConnections();
    const socket = connect({ host: "127.0.0.1", port });
    const chunks: Buffer[] = [];
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    await once(socket, "end");
    server.close();
    expect(recorder.connections).toEqual([{ host: "127.0.0.1", port, loopback: true }]);
    expect(Buffer.concat(chunks).toString()).toBe("hello");
  });

  it("refuses a connection to a non-loopback address before it reaches the network, and records it", async () => {
    recorder = recordOutboundConnections();
    // 192.0.2.0/24 is TEST-NET-1 (RFC 5737, never routed); the recorder stops the attempt anyway.
    const socket: Socket = connect({ host: "192.0.2.1", port: 9 });
    const [error] = (await once(socket, "error")) as [Error];
    expect(error.message).toContain("only loopback is allowed");
    expect(recorder.nonLoopback()).toEqual([{ host: "192.0.2.1", port: 9, loopback: false }]);
  });

  it("refuses a second recorder while one is active", () => {
    recorder = recordOutboundConnections();
    expect(() => recordOutboundConnections()).toThrow(/already active/);
  });
});
