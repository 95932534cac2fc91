package ops

// MaxPackageBytes returns the largest package (zip) a deploy accepts, so a
// face can refuse a larger upload before reading it.
func (s *Service) MaxPackageBytes() int64 { return s.cfg.Artifacts.MaxPackageBytes() }
