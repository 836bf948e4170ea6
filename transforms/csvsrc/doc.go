// Package csvsrc replays an adjustments CSV through the streaming job as
// batches of messages, each bad row a message marked for the dead letters.
package csvsrc
