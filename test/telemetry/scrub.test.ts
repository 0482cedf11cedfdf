import { describe, expect, it } from "vitest";
import { scrubSecrets } from "../../src/telemetry/scrub.js";

describe("scrubSecrets", () => {
  it("redacts bearer tokens after the scheme word", () => {
    expect(scrubSecrets("Authorization: Bearer abc.def-ghi")).toBe("Authorization: Bearer [REDACTED]");
    expect(scrubSecrets("header bearer xyz, next")).toBe("header bearer [REDACTED], next");
  });

  it("redacts a bare JWT anywhere in the text", () => {
    expect(
      scrubSecrets("token=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.sflKxwRJSMeKKF2QT4fwpMeJf36 done"),
    ).not.toContain("eyJ");
  });

  it("redacts the SAS signature but keeps the rest of the URL readable", () => {
    const url = "https://acct.blob.core.windows.net/c/tags.json?sv=2024-11-04&se=2030-01-01&sp=r&sig=AbC%2Bd%3D";
    expect(scrubSecrets(url)).toBe(
      "https://acct.blob.core.windows.net/c/tags.json?sv=2024-11-04&se=2030-01-01&sp=r&sig=[REDACTED]",
    );
  });

  it("redacts account and shared access keys in connection strings", () => {
    const text = "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=a1b2c3==;EndpointSuffix=core.windows.net";
    expect(scrubSecrets(text)).toBe(
      "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=[REDACTED];EndpointSuffix=core.windows.net",
    );
    expect(scrubSecrets("Endpoint=sb://x/;SharedAccessKeyName=k;SharedAccessKey=s3cr3t")).toBe(
      "Endpoint=sb://x/;SharedAccessKeyName=k;SharedAccessKey=[REDACTED]",
    );
  });

  it("redacts secret fields in form bodies and JSON", () => {
    expect(scrubSecrets("grant_type=client_credentials&client_secret=hunter2&scope=x")).toBe(
      "grant_type=client_credentials&client_secret=[REDACTED]&scope=x",
    );
    expect(scrubSecrets('{"access_token":"opaque-token-value","expires_on":"1"}')).toBe(
      '{"access_token":"[REDACTED]","expires_on":"1"}',
    );
  });

  it("leaves ordinary operator messages untouched", () => {
    const message =
      "Registry myreg has 98 of 100 IP rules; the plan needs 7 more (signature change in AzureContainerRegistry.EastUS).";
    expect(scrubSecrets(message)).toBe(message);
  });
});
