// Package reports holds the nightly summary's model and its renderers: the
// manager's HTML page with charts (self-contained, viewable offline), and
// CSV, JSON and Markdown for machines and chat.
package reports
