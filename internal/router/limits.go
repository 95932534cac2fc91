package router

import "time"

// ConnLimits bound the connections to handler processes, on the lean path
// and on the net/http path alike (there through the Transport's
// ResponseHeaderTimeout, MaxConnsPerHost and MaxIdleConnsPerHost: a handler
// process listens on one address). Zero fields take the defaults below.
type ConnLimits struct {
	// ResponseHeaderTimeout bounds the wait for a handler's response head
	// once the request is sent (and for a free connection before that),
	// and on the lean path also how long a handler may leave a request
	// body unread while it has not answered; the client gets 504 when it
	// passes. Zero: 230 s, the limit Azure's front end sets on an
	// HTTP-triggered function.
	ResponseHeaderTimeout time.Duration
	// MaxConnsPerSet bounds the connections open at once to one handler
	// process; further requests wait for one to come free. Zero: 512.
	MaxConnsPerSet int
	// MaxIdleConnsPerSet bounds the idle connections kept for reuse per
	// handler process. Zero: 128.
	MaxIdleConnsPerSet int
	// IdleConnTimeout closes a connection idle in the pool this long.
	// Zero: 90 s.
	IdleConnTimeout time.Duration
}

// withDefaults returns l with its zero fields set to their defaults.
func (l ConnLimits) withDefaults() ConnLimits {
	if l.ResponseHeaderTimeout <= 0 {
		l.ResponseHeaderTimeout = 230 * time.Second
	}
	if l.MaxConnsPerSet <= 0 {
		l.MaxConnsPerSet = 512
	}
	if l.MaxIdleConnsPerSet <= 0 {
		l.MaxIdleConnsPerSet = 128
	}
	l.MaxIdleConnsPerSet = min(l.MaxIdleConnsPerSet, l.MaxConnsPerSet)
	if l.IdleConnTimeout <= 0 {
		l.IdleConnTimeout = 90 * time.Second
	}
	return l
}
