import { z } from "zod";
import { ConfigError } from "../errors.js";

/**
 * The parts of an Application Insights connection string this service relies on. Validated here
 * because the exporter only logs a bad key through OpenTelemetry's diagnostics and then throws a
 * bare Error from its constructor.
 * Format: https://learn.microsoft.com/azure/azure-monitor/app/connection-strings
 */
export interface AppInsightsConnection {
  readonly instrumentationKey: string;
  /** Without a trailing slash; undefined means the exporter's global default. */
  readonly ingestionEndpoint: string | undefined;
  /** `AADAudience`: the token audience (scope) for Entra ID ingestion, when the string names one. */
  readonly aadAudience: string | undefined;
}

const SETTING = "APPLICATIONINSIGHTS_CONNECTION_STRING";

const partsSchema = z.object({
  instrumentationkey: z.guid({ error: "InstrumentationKey must be a GUID" }),
  // The exporter rewrites http to https anyway; refusing http here makes the mistake visible.
  ingestionendpoint: z.url({ protocol: /^https$/, error: "IngestionEndpoint must be an https URL" }).optional(),
  aadaudience: z.url({ protocol: /^https$/, error: "AADAudience must be an https URL" }).optional(),
});

export function parseConnectionString(connectionString: string): AppInsightsConnection {
  const fields: Record<string, string> = {};
  for (const part of connectionString.split(";")) {
    const trimmed = part.trim();
    if (trimmed === "") continue;
    const eq = trimmed.indexOf("=");
    if (eq <= 0) throw invalid(`"${trimmed.slice(0, 40)}" is not a key=value pair`);
    fields[trimmed.slice(0, eq).trim().toLowerCase()] = trimmed.slice(eq + 1).trim();
  }
  const parsed = partsSchema.safeParse(fields);
  if (!parsed.success) throw invalid(parsed.error.issues[0]?.message ?? "invalid");
  return {
    instrumentationKey: parsed.data.instrumentationkey,
    ingestionEndpoint: parsed.data.ingestionendpoint?.replace(/\/+$/, ""),
    aadAudience: parsed.data.aadaudience,
  };
}

function invalid(problem: string): ConfigError {
  // The value itself stays out of the message: it names the resource and, in old formats, a key.
  return new ConfigError(`Setting ${SETTING} is invalid: ${problem}.`, {
    details: { setting: SETTING },
    remedy:
      "Copy the connection string from the Application Insights resource's Overview page (InstrumentationKey=...;IngestionEndpoint=https://...).",
  });
}
