package router

import (
	"fmt"
	"runtime"
	"sync"
	"testing"

	"github.com/hotswap/hotswap"
)

// TestKeysAreCopied: a published key set keeps the keys it was built from
// when the caller's slice changes afterwards (run with -race: the checks
// run while the slice changes).
func TestKeysAreCopied(t *testing.T) {
	keys := []hotswap.Key{
		{Scope: hotswap.ScopeMaster, Name: "_master", Value: "master-key-0123456789"},
		{Scope: hotswap.ScopeHost, Name: "default", Value: "host-key-0123456789"},
	}
	k := NewKeys(keys)
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				if k.Level("hello", "host-key-0123456789") != LevelFunction {
					t.Error("the host key stopped working")
					return
				}
				for _, key := range k.All() {
					_ = key.Value
				}
				runtime.Gosched()
			}
		}()
	}
	for i := range 1000 {
		keys[1].Value = fmt.Sprintf("changed-%d-0123456789", i)
		keys[0] = hotswap.Key{Scope: hotswap.ScopeHost, Name: "other", Value: "other-key-0123456789"}
		runtime.Gosched()
	}
	wg.Wait()
	all := k.All()
	if len(all) != 2 || all[0].Value != "master-key-0123456789" || all[1].Value != "host-key-0123456789" {
		t.Errorf("All() = %+v; want the keys as they were when the set was built", all)
	}
}
