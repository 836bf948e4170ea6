// Package docs holds the project's documentation beyond the README. It has
// no code: its test keeps the README short and its Layout section true,
// every relative Markdown link pointing at a file and heading that exist,
// and every tracked file free of one machine's absolute paths.
package docs
