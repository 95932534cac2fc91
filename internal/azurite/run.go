package azurite

// Run starts a new Azurite outside a test (the benchmark uses it), with its
// data in dir, and returns it with a func that stops it (SIGKILL to its
// process group, then waits). Unlike Start it never skips: a missing Azurite
// is an error that says to run make deps.
func Run(dir string) (*Server, func(), error) {
	bin, err := find()
	if err != nil {
		return nil, nil, err
	}
	var stops []func()
	stop := func() {
		for _, f := range stops {
			f()
		}
	}
	s, err := start(bin, dir, func(f func()) { stops = append(stops, f) })
	if err != nil {
		stop()
		return nil, nil, err
	}
	return s, stop, nil
}
