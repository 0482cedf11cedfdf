import { describe, expect, it } from "vitest";
import {
  decodeHtmlEntities,
  DETAILS_PAGE_URLS,
  findServiceTagsDownloadLink,
} from "../../src/servicetags/details-page.js";

const PAGE = "https://www.microsoft.com/en-us/download/details.aspx?id=56519";
const FOLDER = "https://download.microsoft.com/download/7/1/D/71D86715-5596-4529-9B13-DA13A5DE5B63";

describe("findServiceTagsDownloadLink", () => {
  it("takes the URL from the AcOEt_DownloadUrl script variable", () => {
    const html = `<html><head><script type="text/javascript">
      var AcOEt_ProductName = "Azure IP Ranges and Service Tags";
      window.AcOEt_DownloadUrl = "${FOLDER}/ServiceTags_Public_20251020.json";
    </script></head><body><a href="${FOLDER}/ServiceTags_Public_20251013.json">older</a></body></html>`;
    expect(findServiceTagsDownloadLink(html, { cloud: "Public", pageUrl: PAGE })).toEqual({
      url: `${FOLDER}/ServiceTags_Public_20251020.json`,
      form: "js-variable",
      fileDate: "20251020",
    });
  });

  it("accepts the script variable in single quotes and without spaces", () => {
    const html = `<script>AcOEt_DownloadUrl='${FOLDER}/ServiceTags_China_20260720.json';</script>`;
    expect(findServiceTagsDownloadLink(html, { cloud: "China", pageUrl: PAGE })?.url).toBe(
      `${FOLDER}/ServiceTags_China_20260720.json`,
    );
  });

  it("picks the newest dated href and decodes &amp; in it", () => {
    const html = `<table class="file-list">
      <tr><td><a href="${FOLDER}/ServiceTags_Public_20251006.json?lang=en-us&amp;src=details" class="mscom-link">ServiceTags_Public_20251006.json</a></td></tr>
      <tr><td><a href="${FOLDER}/ServiceTags_Public_20251020.json?lang=en-us&amp;src=details" class="mscom-link">ServiceTags_Public_20251020.json</a></td></tr>
      <tr><td><a href='${FOLDER}/ServiceTags_Public_20251013.json?lang=en-us&amp;src=details' class="mscom-link">ServiceTags_Public_20251013.json</a></td></tr>
    </table>`;
    expect(findServiceTagsDownloadLink(html, { cloud: "Public", pageUrl: PAGE })).toEqual({
      url: `${FOLDER}/ServiceTags_Public_20251020.json?lang=en-us&src=details`,
      form: "href",
      fileDate: "20251020",
    });
  });

  it("ignores links to files of other clouds", () => {
    const html = `<a href="${FOLDER}/ServiceTags_Public_20251020.json">p</a><a href="${FOLDER}/ServiceTags_AzureGovernment_20251013.json">g</a>`;
    expect(findServiceTagsDownloadLink(html, { cloud: "AzureGovernment", pageUrl: PAGE })?.url).toBe(
      `${FOLDER}/ServiceTags_AzureGovernment_20251013.json`,
    );
    expect(findServiceTagsDownloadLink(html, { cloud: "China", pageUrl: PAGE })).toBeUndefined();
  });

  it("ignores links outside a /download/ folder", () => {
    const html = `<a href="https://example.invalid/mirror/ServiceTags_Public_20251020.json">mirror</a>`;
    expect(findServiceTagsDownloadLink(html, { cloud: "Public", pageUrl: PAGE })).toBeUndefined();
  });

  it("resolves a relative href against the page URL", () => {
    const html = `<a href="/download/ServiceTags_Public_20251020.json">file</a>`;
    expect(findServiceTagsDownloadLink(html, { cloud: "Public", pageUrl: PAGE })?.url).toBe(
      "https://www.microsoft.com/download/ServiceTags_Public_20251020.json",
    );
  });

  it("falls back to a quoted URL in embedded JSON, with escaped slashes", () => {
    const html = `<script>window.__DLCDetails__={"dlcDetailsView":{"downloadFile":[{"name":"ServiceTags_Public_20251020.json","url":"https:\\/\\/download.microsoft.com\\/download\\/7\\/1\\/D\\/71D86715-5596-4529-9B13-DA13A5DE5B63\\/ServiceTags_Public_20251020.json"}]}}</script>`;
    expect(findServiceTagsDownloadLink(html, { cloud: "Public", pageUrl: PAGE })).toEqual({
      url: `${FOLDER}/ServiceTags_Public_20251020.json`,
      form: "embedded",
      fileDate: "20251020",
    });
  });

  it("returns undefined for a page without a link to the file", () => {
    const html = `<html><body><h1>Azure IP Ranges and Service Tags – Public Cloud</h1><p>We're sorry, this download is no longer available.</p>
      <a href="confirmation.aspx?id=56519">Download</a></body></html>`;
    expect(findServiceTagsDownloadLink(html, { cloud: "Public", pageUrl: PAGE })).toBeUndefined();
  });

  it("returns undefined for a bot-protection page", () => {
    const html = "<HTML><HEAD><TITLE>Access Denied</TITLE></HEAD><BODY><H1>Access Denied</H1></BODY></HTML>";
    expect(findServiceTagsDownloadLink(html, { cloud: "Public", pageUrl: PAGE })).toBeUndefined();
  });
});

describe("decodeHtmlEntities", () => {
  it("decodes named and numeric entities, &amp; last so that &amp;lt; stays literal", () => {
    expect(decodeHtmlEntities("a&amp;b&#58;&#x2F;&quot;&amp;lt;")).toBe('a&b:/"&lt;');
  });
});

describe("DETAILS_PAGE_URLS", () => {
  it("knows the Download Center ids of the Public, US Government and China clouds", () => {
    expect(DETAILS_PAGE_URLS.Public).toMatch(/id=56519$/);
    expect(DETAILS_PAGE_URLS.AzureGovernment).toMatch(/id=57063$/);
    expect(DETAILS_PAGE_URLS.China).toMatch(/id=57062$/);
    expect(DETAILS_PAGE_URLS.AzureGermany).toBeUndefined();
  });
});
