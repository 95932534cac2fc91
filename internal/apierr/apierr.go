// Package apierr turns domain errors into HTTP answers. It holds the one
// table that maps error kinds to status codes.
package apierr

import (
	"encoding/json"
	"log/slog"
	"net/http"

	"github.com/hotswap/hotswap"
)

var statuses = map[hotswap.Kind]int{
	hotswap.Internal:           http.StatusInternalServerError,
	hotswap.Invalid:            http.StatusBadRequest,
	hotswap.NotFound:           http.StatusNotFound,
	hotswap.Conflict:           http.StatusConflict,
	hotswap.Unauthorized:       http.StatusUnauthorized,
	hotswap.Forbidden:          http.StatusForbidden,
	hotswap.FailedPrecondition: http.StatusPreconditionFailed,
	hotswap.Unavailable:        http.StatusServiceUnavailable,
	hotswap.StorageFull:        http.StatusInsufficientStorage,
	hotswap.TooLarge:           http.StatusRequestEntityTooLarge,
}

// Status returns the HTTP status for err's kind. An error that is not
// classified but comes from a full disk counts as StorageFull.
func Status(err error) int {
	if s, ok := statuses[hotswap.ErrorKind(hotswap.DiskFull(err, ""))]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// Body is the JSON shape of every error answer.
type Body struct {
	Error struct {
		Kind    string `json:"kind"`
		Message string `json:"message"`
	} `json:"error"`
}

// Write answers err as JSON. Internal errors and a full disk are logged with
// their detail; the client sees "internal error", or for a full disk what ran
// out and what was being written, not where.
func Write(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	err = hotswap.DiskFull(err, "")
	status := Status(err)
	if (status == http.StatusInternalServerError || status == http.StatusInsufficientStorage) && log != nil {
		log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	var b Body
	b.Error.Kind = hotswap.ErrorKind(err).String()
	b.Error.Message = hotswap.ErrorMessage(err)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(b)
}

// Text answers err as plain text, for the functions listener.
func Text(w http.ResponseWriter, err error) {
	err = hotswap.DiskFull(err, "")
	http.Error(w, hotswap.ErrorMessage(err), Status(err))
}
