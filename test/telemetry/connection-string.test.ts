import { describe, expect, it } from "vitest";
import { ConfigError } from "../../src/errors.js";
import { parseConnectionString } from "../../src/telemetry/connection-string.js";

describe("parseConnectionString", () => {
  it("reads the key and the ingestion endpoint, case-insensitively and without the trailing slash", () => {
    const parsed = parseConnectionString(
      "instrumentationkey=12345678-1234-1234-1234-123456789abc;IngestionEndpoint=https://westeurope-5.in.applicationinsights.azure.com/;LiveEndpoint=https://westeurope.livediagnostics.monitor.azure.com/;ApplicationId=abc",
    );
    expect(parsed).toEqual({
      instrumentationKey: "12345678-1234-1234-1234-123456789abc",
      ingestionEndpoint: "https://westeurope-5.in.applicationinsights.azure.com",
    });
  });

  it("accepts a connection string without an ingestion endpoint", () => {
    expect(
      parseConnectionString("InstrumentationKey=12345678-1234-1234-1234-123456789abc").ingestionEndpoint,
    ).toBeUndefined();
  });

  it.each([
    ["a bare instrumentation key", "12345678-1234-1234-1234-123456789abc"],
    ["a key that is not a GUID", "InstrumentationKey=abc"],
    ["no key at all", "IngestionEndpoint=https://x.in.applicationinsights.azure.com/"],
    [
      "an http ingestion endpoint",
      "InstrumentationKey=12345678-1234-1234-1234-123456789abc;IngestionEndpoint=http://127.0.0.1:1/",
    ],
  ])("refuses %s with a ConfigError", (_label, value) => {
    expect(() => parseConnectionString(value)).toThrow(ConfigError);
  });
});
