import type { ServiceTagsDocument, TagLag } from "./schema.js";

/**
 * The weekly file checked against the Discovery API (pure). For every tag in both whose
 * changeNumbers differ, the higher one wins (the per-tag changeNumber moved with every prefix
 * change in five years of data; the top-level one is not a version key) and the difference is
 * recorded, so a plan that selects the tag can say `source-lag` with both numbers. Tags only one
 * side has are left as they are: the API may hold a subset of the file.
 */
export function crossCheck(file: ServiceTagsDocument, api: ServiceTagsDocument): ServiceTagsDocument {
  const fromApi = new Map(api.file.values.map((tag) => [tag.name, tag]));
  const lags: TagLag[] = [];
  const values = file.file.values.map((tag) => {
    const other = fromApi.get(tag.name);
    if (other === undefined || other.properties.changeNumber === tag.properties.changeNumber) return tag;
    const apiNewer = other.properties.changeNumber > tag.properties.changeNumber;
    lags.push({
      name: tag.name,
      fileChangeNumber: tag.properties.changeNumber,
      apiChangeNumber: other.properties.changeNumber,
      used: apiNewer ? "discovery-api" : "file",
    });
    return apiNewer ? other : tag;
  });
  return {
    ...file,
    file: { ...file.file, values },
    lags,
    crossCheck: {
      status: "checked",
      detail: `Discovery API changeNumber ${api.file.changeNumber}: ${lags.length} tag(s) differ from the file`,
    },
    newestChangeNumberSeen: Math.max(file.file.changeNumber, api.file.changeNumber),
  };
}
