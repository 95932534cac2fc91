package ops

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/hotswap/hotswap"
	"github.com/hotswap/hotswap/internal/funcapp"
)

var probeClient = &http.Client{
	Transport: &http.Transport{MaxIdleConnsPerHost: 4, IdleConnTimeout: 30 * time.Second},
	CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	},
}

// Probe sends GET path to a slot through the functions listener, as a client
// would, with the slot's key of the given kind ("" or "none": no key;
// "function": the default host key; "host"; "master"). It returns the status.
func (s *Service) Probe(ctx context.Context, app, slot, path, key string) (int, error) {
	s.mu.Lock()
	st, err := s.slotLocked(ctx, app, slot)
	var value string
	if err == nil {
		for _, k := range st.keys {
			switch {
			case (key == "function" || key == "host") && k.Scope == hotswap.ScopeHost && k.Name == "default",
				key == "master" && k.Scope == hotswap.ScopeMaster:
				value = k.Value
			}
		}
	}
	s.mu.Unlock()
	if err != nil {
		return 0, err
	}
	_, port, err := net.SplitHostPort(s.cfg.PublicAddr)
	if err != nil {
		return 0, fmt.Errorf("functions listener address %q: %w", s.cfg.PublicAddr, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1:"+port+path, nil)
	if err != nil {
		return 0, hotswap.Errorf(hotswap.Invalid, "probe path %q: %v", path, err)
	}
	req.Host = s.hostName(app, slot)
	req.Header.Set("User-Agent", "hotswap-probe")
	if value != "" {
		req.Header.Set("X-Functions-Key", value)
	}
	resp, err := probeClient.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	return resp.StatusCode, nil
}

// SlotDeployment returns the deployment a slot serves ("" when empty).
func (s *Service) SlotDeployment(ctx context.Context, app, slot string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.slotLocked(ctx, app, slot)
	if err != nil {
		return "", err
	}
	return st.slot.DeploymentID, nil
}

// SlotExists reports whether an app's slot exists: nil, or the NotFound error.
func (s *Service) SlotExists(ctx context.Context, app, slot string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := s.slotLocked(ctx, app, slot)
	return err
}

// StorePackage validates and stores a package without deploying it (artifact
// feeds), returning its digest.
func (s *Service) StorePackage(ctx context.Context, r io.Reader) (string, error) {
	return s.cfg.Artifacts.Put(ctx, r, func(dir string) error {
		p, err := funcapp.Load(dir)
		if err != nil {
			return err
		}
		return makeExecutable(dir, p.Host)
	})
}
