import { ServiceTagsValidationError } from "../errors.js";
import { serviceTagsFileSchema, type Cloud, type ServiceTagsFile } from "./schema.js";

export interface ParseServiceTagsOptions {
  /** Where the text came from, for error messages. */
  readonly location: string;
  /** When set, the file's `cloud` must equal it. */
  readonly expectedCloud?: Cloud;
}

/**
 * Parses and validates the text of a service-tags file. Accepts a UTF-8 BOM, CRLF or LF.
 * Throws `ServiceTagsValidationError` that says what was wrong: HTML instead of JSON (a bot
 * page), truncated JSON, a schema violation (first issues listed), or the wrong cloud.
 */
export function parseServiceTags(text: string, options: ParseServiceTagsOptions): ServiceTagsFile {
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const head = body.trimStart().slice(0, 1);
  if (head === "<") {
    throw new ServiceTagsValidationError(`${options.location} returned HTML, not a service-tags JSON file.`, {
      details: { location: options.location, reason: "html" },
      remedy:
        "The download site may be blocking automated clients or the URL may point at a page; set SERVICE_TAGS_URL to the JSON file.",
    });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(body);
  } catch (error) {
    throw new ServiceTagsValidationError(
      `${options.location} is not valid JSON (${error instanceof Error ? error.message : String(error)}); the download may be truncated.`,
      {
        details: { location: options.location, reason: "json", bytes: body.length },
        remedy: "Retry later or point SERVICE_TAGS_URL at a complete file.",
        cause: error,
      },
    );
  }
  const parsed = serviceTagsFileSchema.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues
      .slice(0, 3)
      .map((issue) => `${issue.path.join(".") || "(root)"}: ${issue.message}`);
    throw new ServiceTagsValidationError(
      `${options.location} does not have the service-tags schema: ${issues.join("; ")}.`,
      {
        details: { location: options.location, reason: "schema", issues },
        remedy: "Check that the source serves Microsoft's 'Azure IP Ranges and Service Tags' JSON.",
      },
    );
  }
  if (options.expectedCloud !== undefined && parsed.data.cloud !== options.expectedCloud) {
    throw new ServiceTagsValidationError(
      `${options.location} is the service-tags file of cloud '${parsed.data.cloud}', but '${options.expectedCloud}' is configured.`,
      {
        details: {
          location: options.location,
          reason: "cloud",
          cloud: parsed.data.cloud,
          expectedCloud: options.expectedCloud,
        },
        remedy: "Fix SERVICE_TAGS_CLOUD or the source URL so that they name the same cloud.",
      },
    );
  }
  return parsed.data;
}
