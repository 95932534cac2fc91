//go:build race

package router

// raceEnabled: under the race detector sync.Pool drops a share of what is
// put in it on purpose, so a path that reuses pooled objects (the
// runtime's splice pipes) allocates now and then.
const raceEnabled = true
