package hotswap

import "testing"

func TestValidateText(t *testing.T) {
	for _, tc := range []struct {
		s  string
		ok bool
	}{
		{"", true},
		{"fix the cart, café ☕", true},
		{"fix\x00", false},
		{"caf\xe9", false},
		{"\xff\xfe", false},
	} {
		err := ValidateText("deploy message", tc.s)
		if got := err == nil; got != tc.ok {
			t.Errorf("ValidateText(%q) = %v, want ok %v", tc.s, err, tc.ok)
			continue
		}
		if err != nil {
			if ErrorKind(err) != Invalid || ErrorMessage(err) != "deploy message: text contains a NUL byte or invalid UTF-8" {
				t.Errorf("ValidateText(%q) = %v (kind %v), want Invalid naming the field", tc.s, err, ErrorKind(err))
			}
		}
	}
}
