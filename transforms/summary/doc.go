// Package summary holds the nightly job's Beam building blocks: the per-key
// bags of a day's adjustments and opening stock (part), the combiner that
// replays each key's day through the shared ledger rules (Summarize), and
// the global combiner that gathers the rows and charts of the report.
package summary
