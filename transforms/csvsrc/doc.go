// Package csvsrc reads adjustments CSVs (local or gs://), every row decoded
// and validated by one Reader: in file order, as batches of messages for
// the streaming job's replay (Read), each bad row a message marked for
// the dead letters; or split into byte ranges read in parallel (Split,
// OpenRange), for the nightly job.
package csvsrc
