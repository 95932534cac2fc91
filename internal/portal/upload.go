package portal

import (
	"errors"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
)

// upload wraps the POST handler of a form with a file, the deploy form. As
// with action, nothing of the body is read before the origin, the session
// and the access are checked. Then the multipart parts are read in order:
// the first must be the CSRF token, the fields up to the file part go into
// r.PostForm (at most maxFormBytes of them), and h gets the file part
// unread, to stream into the package store: nothing is spooled here, and
// fields after the file part are not read. The body is bounded by the
// package limit plus maxFormBytes. file is nil when the form has none.
func (p *Portal) upload(need access, h func(w http.ResponseWriter, r *http.Request, file *multipart.Part)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r, ok := p.gate(w, r, need)
		if !ok {
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, p.cfg.MaxPackageBytes+maxFormBytes)
		mr, err := r.MultipartReader()
		if err != nil {
			p.render(w, r, http.StatusBadRequest, "error", &view{Title: "Bad request", Data: "the form must be sent as multipart/form-data: " + err.Error()})
			return
		}
		r.PostForm = url.Values{}
		r.Form = r.PostForm
		budget := int64(maxFormBytes)
		var file *multipart.Part
		for first := true; ; first = false {
			part, err := mr.NextPart()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				p.render(w, r, http.StatusBadRequest, "error", &view{Title: "Bad request", Data: formError(err)})
				return
			}
			if first && part.FormName() != csrfField {
				p.refuse(w, r, "invalid or missing CSRF token: it must be the form's first field")
				return
			}
			if part.FileName() != "" || part.FormName() == "package" {
				file = part
				break
			}
			v, err := io.ReadAll(io.LimitReader(part, budget+1))
			if err != nil {
				p.render(w, r, http.StatusBadRequest, "error", &view{Title: "Bad request", Data: formError(err)})
				return
			}
			if budget -= int64(len(v)); budget < 0 {
				p.render(w, r, http.StatusRequestEntityTooLarge, "error", &view{Title: "Request too large", Data: "the form's fields are larger than 1 MiB"})
				return
			}
			r.PostForm.Add(part.FormName(), string(v))
		}
		if !checkCSRF(r) {
			p.refuse(w, r, "invalid or missing CSRF token")
			return
		}
		h(w, r, file)
	}
}
