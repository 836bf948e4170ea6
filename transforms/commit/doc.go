// Package commit is the streaming job's sink: it stores what the job
// produced, publishes its alerts and dead letters, then acknowledges the
// messages they came from, and it counts the job's messages.
package commit
