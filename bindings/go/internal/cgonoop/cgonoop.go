// Package cgonoop is the baseline of the binding's benchmarks: the cheapest cgo call there is.
// (A _test.go file cannot use cgo, and the package itself carries nothing but the product.)
package cgonoop

/*
static void rg_noop(void) {}
*/
import "C"

// Call makes one empty cgo call.
func Call() { C.rg_noop() }
