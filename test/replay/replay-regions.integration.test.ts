import { collectFigures, describeReplays, replayHarness } from "./suite.js";

/**
 * The weekly history 2021-2025 replayed against single-region registries: a small region, a large
 * one, and one whose tag was missing for months (the tag-missing guard must hold the registry).
 */
const rows = collectFigures("Replay figures: single regions (file ledger)");
describeReplays(["small", "large", "vanishing"], rows, replayHarness());
