package ops

import (
	"context"
	"fmt"

	"github.com/hotswap/hotswap"
)

// ListKeys returns a slot's keys: master, host, and function keys (only fn's
// when fn is not empty).
func (s *Service) ListKeys(ctx context.Context, app, slot, fn string) ([]hotswap.Key, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.slotLocked(ctx, app, slot)
	if err != nil {
		return nil, err
	}
	out := make([]hotswap.Key, 0, len(st.keys))
	for _, k := range st.keys {
		if fn != "" && k.Scope == hotswap.ScopeFunction && k.Function != fn {
			continue
		}
		out = append(out, k)
	}
	return sortedKeys(out), nil
}

// PutKey sets a key of a slot; an empty value generates one. It implements
// router.KeyStore for the host admin API.
func (s *Service) PutKey(ctx context.Context, app, slot string, k hotswap.Key) (hotswap.Key, error) {
	return s.SetKey(ctx, "master-key", app, slot, k)
}

// SetKey sets (or, with an empty value, generates) a key of a slot and
// publishes it before it returns.
func (s *Service) SetKey(ctx context.Context, actor, app, slot string, k hotswap.Key) (hotswap.Key, error) {
	k, err := s.setKey(ctx, actor, app, slot, k)
	if err == nil {
		// In a cluster, the key works on every node when the call returns.
		s.clusterAck(ctx, app, slot, "key.set")
	}
	return k, err
}

func (s *Service) setKey(ctx context.Context, actor, app, slot string, k hotswap.Key) (hotswap.Key, error) {
	switch k.Scope {
	case hotswap.ScopeMaster:
		k.Name, k.Function = hotswap.MasterKeyName, ""
	case hotswap.ScopeHost:
		k.Function = ""
		if k.Name == hotswap.MasterKeyName {
			k.Scope = hotswap.ScopeMaster
		}
	case hotswap.ScopeFunction:
		if k.Function == "" {
			return hotswap.Key{}, hotswap.Errorf(hotswap.Invalid, "a function key needs a function name")
		}
	default:
		return hotswap.Key{}, hotswap.Errorf(hotswap.Invalid, "key scope %q is not master, host or function", k.Scope)
	}
	if err := hotswap.ValidateKeyName(k.Name); err != nil && k.Name != hotswap.MasterKeyName {
		return hotswap.Key{}, err
	}
	if k.Value == "" {
		k.Value = newKey()
	} else if err := hotswap.ValidateKeyValue(k.Value); err != nil {
		return hotswap.Key{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.slotLocked(ctx, app, slot)
	if err != nil {
		return hotswap.Key{}, err
	}
	if err := s.store.PutKey(ctx, app, slot, k); err != nil {
		return hotswap.Key{}, err
	}
	// A new slice, never an edit in place: published tables and swaps that
	// copied the slice header under mu read the old one without the lock.
	keys := make([]hotswap.Key, 0, len(st.keys)+1)
	replaced := false
	for _, old := range st.keys {
		if old.Scope == k.Scope && old.Function == k.Function && old.Name == k.Name {
			old = k
			replaced = true
		}
		keys = append(keys, old)
	}
	if !replaced {
		keys = append(keys, k)
	}
	st.keys = keys
	s.publishLocked()
	s.activity(ctx, app, actor, "key.set", slot, keyDetail(k), "succeeded")
	return k, nil
}

// DeleteKey removes a key of a slot. The master key cannot be removed.
func (s *Service) DeleteKey(ctx context.Context, app, slot, scope, fn, name string) error {
	return s.RemoveKey(ctx, "master-key", app, slot, scope, fn, name)
}

// RemoveKey removes a key of a slot, recording actor.
func (s *Service) RemoveKey(ctx context.Context, actor, app, slot, scope, fn, name string) error {
	err := s.removeKey(ctx, actor, app, slot, scope, fn, name)
	if err == nil {
		s.clusterAck(ctx, app, slot, "key.delete")
	}
	return err
}

func (s *Service) removeKey(ctx context.Context, actor, app, slot, scope, fn, name string) error {
	if scope == hotswap.ScopeMaster || name == hotswap.MasterKeyName {
		return hotswap.Errorf(hotswap.FailedPrecondition, "the master key cannot be deleted; renew it instead")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.slotLocked(ctx, app, slot)
	if err != nil {
		return err
	}
	if err := s.store.DeleteKey(ctx, app, slot, scope, fn, name); err != nil {
		return err
	}
	keys := make([]hotswap.Key, 0, len(st.keys))
	for _, k := range st.keys {
		if !(k.Scope == scope && k.Function == fn && k.Name == name) {
			keys = append(keys, k)
		}
	}
	st.keys = keys
	s.publishLocked()
	s.activity(ctx, app, actor, "key.delete", slot, keyDetail(hotswap.Key{Scope: scope, Function: fn, Name: name}), "succeeded")
	return nil
}

// keyDetail names a key for the activity log, never its value.
func keyDetail(k hotswap.Key) string {
	if k.Scope == hotswap.ScopeFunction {
		return fmt.Sprintf("function key %s/%s", k.Function, k.Name)
	}
	return fmt.Sprintf("%s key %s", k.Scope, k.Name)
}
