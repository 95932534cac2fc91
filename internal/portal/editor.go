package portal

import "strings"

// gutterLine is a line number in the pipeline editor's gutter; Bad marks
// a line a problem names.
type gutterLine struct {
	N   int
	Bad bool
}

// Gutter numbers the definition's lines for the editor's gutter.
func (d editorData) Gutter() []gutterLine {
	bad := make(map[int]bool, len(d.Problems))
	for _, p := range d.Problems {
		bad[p.Line] = true
	}
	n := strings.Count(d.Definition, "\n") + 1
	out := make([]gutterLine, n)
	for i := range out {
		out[i] = gutterLine{N: i + 1, Bad: bad[i+1]}
	}
	return out
}
