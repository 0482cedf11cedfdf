import type { Cloud } from "./schema.js";

/** The Download Center pages that link to the weekly file, by cloud (Germany's was retired with the cloud). */
export const DETAILS_PAGE_URLS: Readonly<Partial<Record<Cloud, string>>> = {
  Public: "https://www.microsoft.com/en-us/download/details.aspx?id=56519",
  AzureGovernment: "https://www.microsoft.com/en-us/download/details.aspx?id=57063",
  China: "https://www.microsoft.com/en-us/download/details.aspx?id=57062",
};

/** Which form of the page the link was found in (the page layout has changed several times). */
export type DetailsPageLinkForm = "js-variable" | "href" | "embedded";

export interface DetailsPageLink {
  /** Absolute URL, entities decoded. */
  readonly url: string;
  readonly form: DetailsPageLinkForm;
  /** `YYYYMMDD` from the file name, when the name carries one. */
  readonly fileDate: string | undefined;
}

/**
 * Finds the service-tags file URL in the HTML of a Download Center details page. Tries, in the order
 * community tools use: the `AcOEt_DownloadUrl = "...json"` script variable, then `href` links named
 * `ServiceTags_<Cloud>_YYYYMMDD.json` (newest date wins), then such URLs quoted anywhere in the page
 * (the page has also embedded its download list as JSON). Returns undefined when none is found.
 * Pure: no I/O, so the extraction can be tested against page snippets.
 */
export function findServiceTagsDownloadLink(
  html: string,
  options: { readonly cloud: Cloud; readonly pageUrl: string },
): DetailsPageLink | undefined {
  const variable = /AcOEt_DownloadUrl\s*=\s*(["'])([^"'<>\s]+?\.json)\1/.exec(html);
  if (variable?.[2] !== undefined) {
    const url = resolve(variable[2], options.pageUrl);
    if (url !== undefined) return { url, form: "js-variable", fileDate: fileDateOf(url, options.cloud) };
  }
  const fileName = new RegExp(`ServiceTags_${options.cloud}_(\\d{8})\\.json(?:[?#][^"'\\s<>]*)?$`);
  const hrefs = [...html.matchAll(/href\s*=\s*(["'])([^"'<>]+?)\1/gi)].map((m) => m[2] ?? "");
  const fromHref = newest(hrefs, fileName, options.pageUrl);
  if (fromHref !== undefined) return { ...fromHref, form: "href" };
  const quoted = [...html.matchAll(/(["'])(https?:(?:\\?\/){2}[^"'<>\s]+?)\1/g)].map((m) =>
    (m[2] ?? "").replace(/\\\//g, "/"),
  );
  const embedded = newest(quoted, fileName, options.pageUrl);
  if (embedded !== undefined) return { ...embedded, form: "embedded" };
  return undefined;
}

function newest(
  candidates: readonly string[],
  fileName: RegExp,
  pageUrl: string,
): { url: string; fileDate: string } | undefined {
  let best: { url: string; fileDate: string } | undefined;
  for (const candidate of candidates) {
    const url = resolve(candidate, pageUrl);
    if (url === undefined) continue;
    const path = new URL(url).pathname;
    if (!path.includes("/download/")) continue;
    const date = fileName.exec(url)?.[1];
    if (date === undefined) continue;
    if (best === undefined || date > best.fileDate) best = { url, fileDate: date };
  }
  return best;
}

function fileDateOf(url: string, cloud: Cloud): string | undefined {
  return new RegExp(`ServiceTags_${cloud}_(\\d{8})\\.json`).exec(url)?.[1];
}

/** Decodes the entities that appear in attribute values of these pages (`&amp;` above all). */
export function decodeHtmlEntities(text: string): string {
  return text
    .replace(/&#x([0-9a-f]+);/gi, (_, hex: string) => String.fromCodePoint(Number.parseInt(hex, 16)))
    .replace(/&#(\d+);/g, (_, dec: string) => String.fromCodePoint(Number.parseInt(dec, 10)))
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&amp;/g, "&");
}

function resolve(raw: string, pageUrl: string): string | undefined {
  try {
    return new URL(decodeHtmlEntities(raw.trim()), pageUrl).toString();
  } catch {
    return undefined;
  }
}
