package azstorage

import (
	"errors"
	"net/url"
	"strings"
)

// Redact removes the query (where a shared access signature is) and the
// user info from the URL of every *url.Error in err's chain, in place, and
// returns err. The SDK returns such errors for network failures and
// timeouts ("Get \"https://acct.queue.../q/messages?sig=...\": dial tcp
// ..."); every storage error that may reach a log, the API or a client goes
// through here. Wrappers that formatted their message before (fmt.Errorf)
// get the URL replaced in a new error that unwraps to err. A nil err stays
// nil.
func Redact(err error) error {
	if err == nil {
		return nil
	}
	var urls []string
	redactChain(err, 0, &urls)
	msg := err.Error()
	r := msg
	for i := 0; i+1 < len(urls); i += 2 {
		r = strings.ReplaceAll(r, urls[i], urls[i+1])
	}
	if r != msg {
		return &redactedError{msg: r, err: err}
	}
	return err
}

// redactChain redacts the *url.Errors in err's chain, appending each
// original URL and its redacted form to urls.
func redactChain(err error, depth int, urls *[]string) {
	for err != nil && depth < 64 {
		depth++
		if ue, ok := err.(*url.Error); ok {
			if r := RedactURL(ue.URL); r != ue.URL {
				*urls = append(*urls, ue.URL, r)
				ue.URL = r
			}
		}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				redactChain(e, depth, urls)
			}
			return
		}
		err = errors.Unwrap(err)
	}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// RedactURL returns u without its query, fragment and user info.
func RedactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		base, _, _ := strings.Cut(u, "?")
		if i := strings.Index(base, "@"); i >= 0 {
			if j := strings.Index(base, "://"); j >= 0 && j < i {
				base = base[:j+3] + base[i+1:]
			}
		}
		return base
	}
	p.RawQuery, p.ForceQuery, p.Fragment, p.RawFragment, p.User = "", false, "", "", nil
	return p.String()
}
