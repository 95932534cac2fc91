package funcapp

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseRouteErrors(t *testing.T) {
	tests := []struct {
		template string
		want     string
	}{
		{"a//b", `route "a//b": empty segment`},
		{"//a", `route "//a": empty segment`},
		{"a//", `route "a//": empty segment at the end`},
		{"~/a", `route "~/a": a leading ~ is not supported`},
		{"a/{id", `route "a/{id": unbalanced braces: missing }`},
		{"a/id}", `route "a/id}": unbalanced braces: unexpected } in segment "id}"`},
		{"{a{b}}", `route "{a{b}}": unbalanced braces: unexpected { inside a parameter`},
		{"{}", `route "{}": parameter {} has no name`},
		{"{:int}", `route "{:int}": parameter {:int} has no name`},
		{"{a b}", `route "{a b}": parameter {a b}: character ' ' is not allowed in a parameter name`},
		{"{id}/{ID}", `route "{id}/{ID}": parameter "ID" appears more than once`},
		{"{id:number}", `route "{id:number}": parameter "id": unknown constraint "number"`},
		{"{id:}", `route "{id:}": parameter "id": empty constraint`},
		{"{id:int(3)}", `route "{id:int(3)}": parameter "id": constraint int takes no argument`},
		{"{id:min}", `route "{id:min}": parameter "id": constraint min needs an argument`},
		{"{id:min(x)}", `route "{id:min(x)}": parameter "id": constraint min(x): "x" is not an integer`},
		{"{id:range(1)}", `route "{id:range(1)}": parameter "id": constraint range(1): wrong number of arguments`},
		{"{id:range(5,1)}", `route "{id:range(5,1)}": parameter "id": constraint range(5,1): minimum is greater than maximum`},
		{"{id:length(1,2,3)}", `route "{id:length(1,2,3)}": parameter "id": constraint length(1,2,3): wrong number of arguments`},
		{"{id:minlength(-1)}", `route "{id:minlength(-1)}": parameter "id": constraint minlength(-1): length must not be negative`},
		{"{id:regex(a(b)}", `route "{id:regex(a(b)}": parameter "id": constraint regex: missing )`},
		{"{id:regex([)}", "route \"{id:regex([)}\": parameter \"id\": constraint regex([): error parsing regexp: missing closing ]: `[`"},
		{"{id:regex()}", `route "{id:regex()}": parameter "id": constraint regex needs an expression: regex(expr)`},
		{"{*rest}/a", `route "{*rest}/a": catch-all parameter "rest" must be the last segment`},
		{"{*rest?}", `route "{*rest?}": catch-all parameter "rest" cannot be marked optional (it already is)`},
		{"{id?}/a", `route "{id?}/a": optional or defaulted parameter "id" must be followed only by optional, defaulted or catch-all parameters`},
		{"{id=1}/{x}", `route "{id=1}/{x}": optional or defaulted parameter "id" must be followed only by optional, defaulted or catch-all parameters`},
		{"{id?=1}", `route "{id?=1}": parameter {id?=1}: '?' must end the parameter (an optional parameter cannot have a default)`},
		{"{id=}", `route "{id=}": parameter "id" has an empty default value`},
		{"{id:int=x}", `route "{id:int=x}": default value "x" of parameter "id" does not satisfy its constraints`},
		{"{id:int}x", `route "{id:int}x": segment "{id:int}x": a parameter must be the whole segment`},
		{"{name}.{ext}", `route "{name}.{ext}": segment "{name}.{ext}": a parameter must be the whole segment`},
		{"file.{ext}", `route "file.{ext}": segment "file.{ext}": a parameter must be the whole segment`},
		{"a?b", `route "a?b": character '?' is not allowed in segment "a?b"`},
		{"{id:int)}", `route "{id:int)}": parameter {id:int)}: unexpected ")"`},
	}
	for _, tc := range tests {
		t.Run(tc.template, func(t *testing.T) {
			got, err := ParseRoute(tc.template)
			checkInvalid(t, err, tc.want)
			if got != nil {
				t.Errorf("route = %v, want nil", got)
			}
		})
	}
}

func TestRouteMatch(t *testing.T) {
	tests := []struct {
		template string
		path     string
		want     []Param // nil with ok false: no match
		ok       bool
	}{
		{"", "", nil, true},
		{"", "/", nil, true},
		{"", "a", nil, false},
		{"/items/", "items", nil, true},
		{"items", "ITEMS/", nil, true},
		{"items", "items/x", nil, false},
		{"items", "item", nil, false},
		{"a/{x}", "a/%7Bx%7D", []Param{{"x", "{x}"}}, true},
		{"caf%C3%A9", "café", nil, false},
		{"café", "caf%C3%A9", nil, true},
		{"{{lit}}", "{lit}", nil, true},
		{"{a}/{b}", "x/y", []Param{{"a", "x"}, {"b", "y"}}, true},
		{"{a}/{b}", "x", nil, false},
		{"{a}/{b}", "x//y", nil, false},
		{"{a}", "hello%20world", []Param{{"a", "hello world"}}, true},
		{"{a}", "a%2Fb", []Param{{"a", "a/b"}}, true},
		{"{a}", "100%", []Param{{"a", "100%"}}, true},
		{"{id:int}", "42", []Param{{"id", "42"}}, true},
		{"{id:int}", "-2147483648", []Param{{"id", "-2147483648"}}, true},
		{"{id:int}", "2147483648", nil, false},
		{"{id:int}", "4x", nil, false},
		{"{id:long}", "9223372036854775807", []Param{{"id", "9223372036854775807"}}, true},
		{"{id:long}", "9223372036854775808", nil, false},
		{"{id:long}", "-9223372036854775808", []Param{{"id", "-9223372036854775808"}}, true},
		{"{id:long}", "99999999999999999999", nil, false},
		{"{b:bool}", "True", []Param{{"b", "True"}}, true},
		{"{b:bool}", "yes", nil, false},
		{"{s:alpha}", "abcXYZ", []Param{{"s", "abcXYZ"}}, true},
		{"{s:alpha}", "abc1", nil, false},
		{"{g:guid}", "0f8fad5b-d9cb-469f-a165-70867728950e", []Param{{"g", "0f8fad5b-d9cb-469f-a165-70867728950e"}}, true},
		{"{g:guid}", "{0F8FAD5B-D9CB-469F-A165-70867728950E}", []Param{{"g", "{0F8FAD5B-D9CB-469F-A165-70867728950E}"}}, true},
		{"{g:guid}", "0f8fad5bd9cb469fa16570867728950e", []Param{{"g", "0f8fad5bd9cb469fa16570867728950e"}}, true},
		{"{g:guid}", "0f8fad5b-d9cb-469f-a165-70867728950g", nil, false},
		{"{d:datetime}", "2024-02-29", []Param{{"d", "2024-02-29"}}, true},
		{"{d:datetime}", "2024-02-29T10:00:00Z", []Param{{"d", "2024-02-29T10:00:00Z"}}, true},
		{"{d:datetime}", "2023-02-29", nil, false},
		{"{n:decimal}", "-1.50", []Param{{"n", "-1.50"}}, true},
		{"{n:decimal}", "1e5", nil, false},
		{"{n:double}", "1e5", []Param{{"n", "1e5"}}, true},
		{"{n:double}", "inf", nil, false},
		{"{n:float}", "1e39", nil, false},
		{"{s:minlength(2)}", "é", nil, false},
		{"{s:minlength(2)}", "éé", []Param{{"s", "éé"}}, true},
		{"{s:maxlength(2)}", "abc", nil, false},
		{"{s:length(3)}", "abc", []Param{{"s", "abc"}}, true},
		{"{s:length(1,2)}", "abc", nil, false},
		{"{n:min(1)}", "0", nil, false},
		{"{n:max(10)}", "10", []Param{{"n", "10"}}, true},
		{"{n:range(1,10)}", "11", nil, false},
		{"{id:int:min(1)}", "0", nil, false},
		{"{id:int:min(1)}", "7", []Param{{"id", "7"}}, true},
		{`{ssn:regex(^\d{{3}}-\d{{2}}-\d{{4}}$)}`, "123-45-6789", []Param{{"ssn", "123-45-6789"}}, true},
		{`{ssn:regex(^\d{{3}}-\d{{2}}-\d{{4}}$)}`, "123-45-678", nil, false},
		{"{c:regex(^(ab)?c$)}", "ABC", []Param{{"c", "ABC"}}, true},
		{"{c:regex(^a:b$)}", "a:b", []Param{{"c", "a:b"}}, true},
		{"{c:regex(x)}", "axb", []Param{{"c", "axb"}}, true},
		{"a/{id?}", "a", nil, true},
		{"a/{id?}", "a/1", []Param{{"id", "1"}}, true},
		{"a/{id:int?}", "a/x", nil, false},
		{"a/{id:int?}", "a/", nil, true},
		{"a/{id=5}", "a", []Param{{"id", "5"}}, true},
		{"a/{id=5}", "a/6", []Param{{"id", "6"}}, true},
		{"a/{x?}/{y?}", "a/1", []Param{{"x", "1"}}, true},
		{"a/{x=1}/{y=2}", "a", []Param{{"x", "1"}, {"y", "2"}}, true},
		{"a/{*rest}", "a", nil, true},
		{"a/{*rest}", "a/", nil, true},
		{"a/{*rest}", "a/b/c%20d", []Param{{"rest", "b/c d"}}, true},
		{"a/{**rest}", "a/b//c", []Param{{"rest", "b//c"}}, true},
		{"a/{*rest=x}", "a", []Param{{"rest", "x"}}, true},
		{"a/{*rest:int}", "a/12", []Param{{"rest", "12"}}, true},
		{"a/{*rest:int}", "a/1/2", nil, false},
		{"a/{x?}/{*rest}", "a/1/2/3", []Param{{"x", "1"}, {"rest", "2/3"}}, true},
	}
	for _, tc := range tests {
		t.Run(tc.template+"|"+tc.path, func(t *testing.T) {
			r, err := ParseRoute(tc.template)
			if err != nil {
				t.Fatal(err)
			}
			pre := []Param{{"keep", "me"}}
			got, ok := r.Match(tc.path, pre)
			if ok != tc.ok {
				t.Fatalf("Match(%q) ok = %v, want %v (params %v)", tc.path, ok, tc.ok, got)
			}
			want := append([]Param{{"keep", "me"}}, tc.want...)
			if diff := cmp.Diff(got, want); diff != "" {
				t.Errorf("Match(%q) params mismatch (-got +want):\n%s", tc.path, diff)
			}
		})
	}
}

func TestRouteParams(t *testing.T) {
	r, err := ParseRoute("/a/{b:int}/c/{d?}")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(r.Params(), []string{"b", "d"}); diff != "" {
		t.Errorf("Params mismatch (-got +want):\n%s", diff)
	}
	if got, want := r.String(), "/a/{b:int}/c/{d?}"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}
