// Package cli is the operator's command line, `inventory`: one binary for
// setting up, feeding, watching and running the product.
package cli
