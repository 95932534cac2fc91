// Package examples holds deployable function apps in the Azure Functions
// custom-handler layout, one directory each: goforward (Go, forwarding mode),
// gopayload (Go, payload mode) and node (Node.js, forwarding mode). Each is
// deployed with `hotswap deploy APP examples/<name>`; the tests in this
// package build and run every handler and call it directly.
package examples
