package stock

// PrismNoSplitExperiment turns off Prism's dynamic splitting of bundles. A
// job with Apply must run with it on Prism (stream.RunPrism sets it).
//
// Prism (Beam v2.77.0) marks every stage splittable, stateful ones
// included. When a bundle makes no progress for a progress tick (100 ms;
// a slow warehouse write or a busy machine suffices), it asks the SDK to
// split it; the SDK hands back the unprocessed elements, and Prism releases
// their keys for other bundles while the first bundle still holds a copy of
// those keys' state, which it writes back when it finishes. Two bundles then
// update one shard's ledgers from the same starting point, and one set of
// updates is lost: stock off by the lost events, and those events' ids
// forgotten, so a redelivery is applied again. TestKillAndRestart caught it
// under load; TestStockSurvivesSlowBundles reproduces it.
// Nothing here needs those splits: the Pub/Sub source refuses them, and a
// stock bundle is small. Upstream report: docs/beam-notes.md#upstream-issues-ready-to-file, item 2.
const PrismNoSplitExperiment = "prism_disable_sdf_split"
