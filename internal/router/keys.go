package router

import (
	"crypto/subtle"
	"net/http"

	"github.com/hotswap/hotswap"
)

// Level is the access level a request's key grants on a slot.
type Level uint8

// Access levels, in increasing order.
const (
	LevelNone     Level = iota // no key or a wrong key
	LevelFunction              // a key of the function, or a host key
	LevelAdmin                 // the master key
)

// Keys is the immutable key set of one slot.
type Keys struct {
	master   []byte
	host     [][]byte
	function map[string][][]byte // function name -> its keys
	all      []hotswap.Key
}

// NewKeys builds a key set from the slot's stored keys. It keeps a copy:
// the caller may change keys afterwards while the set is published.
func NewKeys(keys []hotswap.Key) *Keys {
	k := &Keys{function: make(map[string][][]byte), all: append([]hotswap.Key(nil), keys...)}
	for _, key := range keys {
		v := []byte(key.Value)
		switch key.Scope {
		case hotswap.ScopeMaster:
			k.master = v
		case hotswap.ScopeHost:
			k.host = append(k.host, v)
		case hotswap.ScopeFunction:
			k.function[key.Function] = append(k.function[key.Function], v)
		}
	}
	return k
}

// All returns the keys the set was built from.
func (k *Keys) All() []hotswap.Key { return k.all }

// Level returns the access level the provided key grants for function fn.
// Every comparison is constant time; the provided key is never logged.
func (k *Keys) Level(fn, provided string) Level {
	if provided == "" || k == nil {
		return LevelNone
	}
	if equal(k.master, provided) {
		return LevelAdmin
	}
	for _, v := range k.host {
		if equal(v, provided) {
			return LevelFunction
		}
	}
	if fn != "" {
		for _, v := range k.function[fn] {
			if equal(v, provided) {
				return LevelFunction
			}
		}
	}
	return LevelNone
}

func equal(want []byte, got string) bool {
	if len(want) == 0 {
		return false
	}
	// The conversion does not allocate: the compiler recognises []byte(s)
	// passed to a function that does not keep it only when inlined, so keep the
	// comparison byte-wise instead.
	if len(want) != len(got) {
		return false
	}
	var v byte
	for i := 0; i < len(want); i++ {
		v |= want[i] ^ got[i]
	}
	return subtle.ConstantTimeByteEq(v, 0) == 1
}

// RequestKey returns the key a request carries: the x-functions-key header,
// else the code query parameter.
func RequestKey(r *http.Request) string {
	if v := r.Header.Get("X-Functions-Key"); v != "" {
		return v
	}
	return queryValue(r.URL.RawQuery, "code")
}

// queryValue finds the first value of name in a raw query without building a
// map, unescaping only when needed.
func queryValue(raw, name string) string {
	for raw != "" {
		var part string
		if i := indexByte(raw, '&'); i >= 0 {
			part, raw = raw[:i], raw[i+1:]
		} else {
			part, raw = raw, ""
		}
		if len(part) > len(name) && part[len(name)] == '=' && part[:len(name)] == name {
			return unescape(part[len(name)+1:])
		}
	}
	return ""
}

func indexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

func unescape(s string) string {
	needs := false
	for i := 0; i < len(s); i++ {
		if s[i] == '%' || s[i] == '+' {
			needs = true
			break
		}
	}
	if !needs {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '+':
			b = append(b, ' ')
		case c == '%' && i+2 < len(s) && ishex(s[i+1]) && ishex(s[i+2]):
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
		default:
			b = append(b, c)
		}
	}
	return string(b)
}

func ishex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
