package portal

import (
	"errors"
	"net/http"
	"net/url"
)

// errCrossOrigin is the answer to a form posted from another site.
var errCrossOrigin = errors.New("cross-origin request refused: submit the form from this portal")

// checkOrigin refuses a POST that a browser sent from another origin. The
// standard library's CrossOriginProtection judges Sec-Fetch-Site and
// Origin (against the Host, and the public URL as a trusted origin); a
// request with neither, from an older browser, is judged by its Referer.
// A request with none of them is not from a browser page, and the CSRF
// token alone protects it.
func (p *Portal) checkOrigin(r *http.Request) error {
	if err := p.cop.Check(r); err != nil {
		return errCrossOrigin
	}
	if r.Header.Get("Sec-Fetch-Site") != "" || r.Header.Get("Origin") != "" {
		return nil
	}
	ref := r.Referer()
	if ref == "" {
		return nil
	}
	u, err := url.Parse(ref)
	if err != nil || u.Host != r.Host && (p.public == nil || u.Host != p.public.Host) {
		return errCrossOrigin
	}
	return nil
}
