package pipeline

import (
	"fmt"
	"strings"

	"github.com/hotswap/hotswap"
)

// Problem is one thing wrong with a definition.
type Problem struct {
	Line, Column int    // 1-based; 0 when the problem has no position
	Path         string // the field, like "stages[1].approval.timeout"; empty for the whole definition
	Msg          string
}

// String formats p as "line 12, column 5: stages[1].approval.timeout: msg".
func (p Problem) String() string {
	var b strings.Builder
	switch {
	case p.Line > 0 && p.Column > 0:
		fmt.Fprintf(&b, "line %d, column %d: ", p.Line, p.Column)
	case p.Line > 0:
		fmt.Fprintf(&b, "line %d: ", p.Line)
	}
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// maxErrorLines bounds the text of an Error; Problems keeps them all.
const maxErrorLines = 100

// Error is the error Parse returns for an invalid definition: every problem
// found, sorted by position. It unwraps to a *hotswap.Error of kind
// hotswap.Invalid whose message is the same text.
type Error struct {
	Problems []Problem
}

// Error returns one problem per line.
func (e *Error) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i == maxErrorLines {
			fmt.Fprintf(&b, "\n(%d more problems)", len(e.Problems)-i)
			break
		}
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(p.String())
	}
	return b.String()
}

// Unwrap returns the error as a *hotswap.Error of kind hotswap.Invalid, so
// hotswap.ErrorKind and hotswap.ErrorMessage work on it.
func (e *Error) Unwrap() error {
	return &hotswap.Error{Kind: hotswap.Invalid, Msg: e.Error()}
}
