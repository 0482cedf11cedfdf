/** The HTTP status a storage SDK error carries (`RestError.statusCode`), when it carries one. */
export function statusOf(error: unknown): number | undefined {
  const status = (error as { statusCode?: unknown } | null)?.statusCode;
  return typeof status === "number" ? status : undefined;
}
