package hotswap

import (
	"strings"
	"unicode/utf8"
)

// ValidateText checks free text a user gives (a deploy message, an
// author): it must be valid UTF-8 without NUL bytes, which PostgreSQL
// cannot store in text (SQLite can). The stores refuse such text with this
// error, so both agree; what names the field.
func ValidateText(what, s string) error {
	if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return nil
	}
	return Errorf(Invalid, "%s: text contains a NUL byte or invalid UTF-8", what)
}

// CleanText makes text the server composes from outside input (a handler's
// output in an error, say) storable: invalid UTF-8 becomes U+FFFD and NUL
// bytes are dropped.
func CleanText(s string) string {
	if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "")
}
