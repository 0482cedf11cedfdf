import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { gunzipSync } from "node:zlib";
import { z } from "zod";
import { serverTlsOptions } from "./tls.js";

/**
 * A loopback Application Insights ingestion endpoint ("Breeze"). The Azure Monitor exporter POSTs
 * JSON arrays of envelopes to `<IngestionEndpoint>/v2.1/track` and only speaks https, so this
 * serves TLS with the test certificate (trusted via NODE_EXTRA_CA_CERTS). It answers like Breeze
 * and keeps every envelope for assertions. Used by tests and by the demo: no test framework here.
 */

const envelopeSchema = z.looseObject({
  name: z.string(),
  time: z.string(),
  iKey: z.string(),
  tags: z.record(z.string(), z.string()).optional(),
  data: z.looseObject({
    baseType: z.string(),
    baseData: z.looseObject({}),
  }),
});
export type Envelope = z.infer<typeof envelopeSchema>;

const eventDataSchema = z.looseObject({
  name: z.string(),
  properties: z.record(z.string(), z.string()).optional(),
  measurements: z.record(z.string(), z.number()).optional(),
});

const metricDataSchema = z.looseObject({
  metrics: z.array(
    z.looseObject({
      name: z.string(),
      value: z.number(),
      count: z.number().optional(),
      min: z.number().optional(),
      max: z.number().optional(),
    }),
  ),
  properties: z.record(z.string(), z.string()).optional(),
});

export interface CapturedEvent {
  readonly name: string;
  /** customDimensions: every value is a string on the wire (numbers and booleans included). */
  readonly properties: Readonly<Record<string, string>>;
  readonly measurements: Readonly<Record<string, number>>;
  readonly tags: Readonly<Record<string, string>>;
  readonly time: string;
}

export interface CapturedMetric {
  readonly name: string;
  readonly value: number;
  readonly count: number | undefined;
  readonly properties: Readonly<Record<string, string>>;
  readonly tags: Readonly<Record<string, string>>;
  readonly time: string;
}

export interface CapturedRequest {
  readonly path: string;
  readonly contentEncoding: string | undefined;
  /** The Authorization header as sent (Entra ID ingestion uses `Bearer <token>`). */
  readonly authorization: string | undefined;
  readonly itemCount: number;
}

export interface IngestionEndpointOptions {
  /** HTTP status for track requests (default 200). 5xx and 429 make the exporter retry with backoff (seconds). */
  readonly status?: number;
}

export interface IngestionEndpoint {
  /** `https://127.0.0.1:<port>` (no trailing slash). */
  readonly url: string;
  /** A connection string pointing at this endpoint with the all-zero instrumentation key. */
  readonly connectionString: string;
  readonly requests: readonly CapturedRequest[];
  readonly envelopes: readonly Envelope[];
  /** Custom events (`customEvents` rows), optionally only those with this name. */
  events(name?: string): CapturedEvent[];
  /** Metric points (`customMetrics` rows), optionally only those with this name. */
  metrics(name?: string): CapturedMetric[];
  /** Forgets everything captured so far. */
  clear(): void;
  close(): Promise<void>;
}

export const TEST_INSTRUMENTATION_KEY = "00000000-0000-0000-0000-000000000000";

export async function startIngestionEndpoint(options: IngestionEndpointOptions = {}): Promise<IngestionEndpoint> {
  const requests: CapturedRequest[] = [];
  const envelopes: Envelope[] = [];

  const server: Server = createServer(serverTlsOptions(), (req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const reply = (status: number, body: unknown): void => {
        res.writeHead(status, { "content-type": "application/json" });
        res.end(JSON.stringify(body));
      };
      const path = (req.url ?? "").split("?")[0] ?? "";
      if (req.method !== "POST" || path.replace(/\/+/g, "/") !== "/v2.1/track") {
        reply(404, {
          itemsReceived: 0,
          itemsAccepted: 0,
          errors: [{ index: 0, statusCode: 404, message: `No route ${req.method} ${path}` }],
        });
        return;
      }
      const encoding = req.headers["content-encoding"];
      let items: unknown[];
      try {
        const raw = Buffer.concat(chunks);
        const text = (encoding === "gzip" ? gunzipSync(raw) : raw).toString("utf8");
        const parsed: unknown = JSON.parse(text);
        items = Array.isArray(parsed) ? parsed : [parsed];
      } catch (error) {
        reply(400, {
          itemsReceived: 0,
          itemsAccepted: 0,
          errors: [
            {
              index: 0,
              statusCode: 400,
              message: `Unreadable body: ${error instanceof Error ? error.message : String(error)}`,
            },
          ],
        });
        return;
      }
      requests.push({
        path,
        contentEncoding: encoding,
        authorization: req.headers.authorization,
        itemCount: items.length,
      });
      const status = options.status ?? 200;
      const errors: { index: number; statusCode: number; message: string }[] = [];
      items.forEach((item, index) => {
        const envelope = envelopeSchema.safeParse(item);
        if (!envelope.success) {
          errors.push({ index, statusCode: 400, message: envelope.error.issues[0]?.message ?? "invalid envelope" });
        } else if (status === 200) {
          envelopes.push(envelope.data);
        }
      });
      if (status !== 200) {
        reply(status, {
          itemsReceived: items.length,
          itemsAccepted: 0,
          errors: items.map((_, index) => ({ index, statusCode: status, message: "Test endpoint refuses" })),
        });
        return;
      }
      // Breeze answers 206 when some items were rejected, 200 when all were accepted.
      reply(errors.length === 0 ? 200 : 206, {
        itemsReceived: items.length,
        itemsAccepted: items.length - errors.length,
        errors,
      });
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const url = `https://127.0.0.1:${port}`;

  return {
    url,
    connectionString: `InstrumentationKey=${TEST_INSTRUMENTATION_KEY};IngestionEndpoint=${url}/`,
    requests,
    envelopes,
    events(name) {
      const out: CapturedEvent[] = [];
      for (const envelope of envelopes) {
        if (envelope.data.baseType !== "EventData") continue;
        const data = eventDataSchema.parse(envelope.data.baseData);
        if (name !== undefined && data.name !== name) continue;
        out.push({
          name: data.name,
          properties: data.properties ?? {},
          measurements: data.measurements ?? {},
          tags: envelope.tags ?? {},
          time: envelope.time,
        });
      }
      return out;
    },
    metrics(name) {
      const out: CapturedMetric[] = [];
      for (const envelope of envelopes) {
        if (envelope.data.baseType !== "MetricData") continue;
        const data = metricDataSchema.parse(envelope.data.baseData);
        for (const metric of data.metrics) {
          if (name !== undefined && metric.name !== name) continue;
          out.push({
            name: metric.name,
            value: metric.value,
            count: metric.count,
            properties: data.properties ?? {},
            tags: envelope.tags ?? {},
            time: envelope.time,
          });
        }
      }
      return out;
    },
    clear() {
      requests.length = 0;
      envelopes.length = 0;
    },
    close() {
      return new Promise<void>((resolve, reject) => {
        server.close((error) => {
          if (error) reject(error);
          else resolve();
        });
        // The exporter keeps its connection alive; without this, close() waits for the idle timeout.
        server.closeAllConnections();
      });
    },
  };
}
