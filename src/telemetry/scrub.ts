/**
 * Last line of defence before text leaves the process for Application Insights. Messages reach
 * telemetry already sanitised by the error classes, but an SDK error text or a configured URL can
 * still carry a credential (a SAS URL in SERVICE_TAGS_URL, a storage connection string echoed by
 * an SDK, a bearer header in a RestError dump). Patterns, not a parser: over-redaction is fine.
 */

const REDACTED = "[REDACTED]";

interface Rule {
  readonly pattern: RegExp;
  readonly replace: string;
}

const RULES: readonly Rule[] = [
  // `Authorization: Bearer eyJ...`, `bearer abc.def`: any token after the scheme word.
  { pattern: /\b(Bearer|Basic|SharedKey|SharedAccessSignature)\s+[^\s"',;]+/gi, replace: `$1 ${REDACTED}` },
  // A JWT anywhere (access tokens, id tokens): three base64url segments, the first one `{"`-encoded.
  { pattern: /\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*/g, replace: REDACTED },
  // SAS query parameters: the signature is the secret; keep the rest of the URL readable.
  { pattern: /([?&;]sig=)[^&\s"'#;]+/gi, replace: `$1${REDACTED}` },
  // Storage, Service Bus, Event Hubs, SignalR connection strings.
  { pattern: /\b(AccountKey|SharedAccessKey|SharedAccessSignature|AccessKey)=[^;\s"']+/gi, replace: `$1=${REDACTED}` },
  // OAuth and form fields that hold secrets, as `k=v` or JSON `"k":"v"`.
  {
    pattern:
      /\b(client_secret|client_assertion|access_token|refresh_token|password|x-ms-identity-header|X-IDENTITY-HEADER)(["']?\s*[:=]\s*["']?)[^\s"'&,;}]+/gi,
    replace: `$1$2${REDACTED}`,
  },
];

/** Returns `text` with anything that looks like a credential replaced by `[REDACTED]`. */
export function scrubSecrets(text: string): string {
  let out = text;
  for (const rule of RULES) out = out.replace(rule.pattern, rule.replace);
  return out;
}
