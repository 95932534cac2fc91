package hotswap

import "testing"

func TestValidateName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"orders", true},
		{"a", true},
		{"orders-v2", true},
		{"", false},
		{"Orders", false},
		{"1orders", false},
		{"-orders", false},
		{"orders-", false},
		{"or_ders", false},
		{"or.ders", false},
		{"abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabc", true},
		{"abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcd", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateName("app", tc.name)
			if got := err == nil; got != tc.ok {
				t.Fatalf("ValidateName(%q) = %v, want ok=%v", tc.name, err, tc.ok)
			}
			if err != nil && ErrorKind(err) != Invalid {
				t.Errorf("kind = %v, want invalid", ErrorKind(err))
			}
		})
	}
}

func TestHostName(t *testing.T) {
	if got := HostName("orders", "production", "localhost"); got != "orders.localhost" {
		t.Errorf("production host = %q", got)
	}
	if got := HostName("orders", "staging", "example.com"); got != "orders-staging.example.com" {
		t.Errorf("staging host = %q", got)
	}
}

func TestValidateSettingName(t *testing.T) {
	for _, ok := range []string{"A", "FOO_BAR", "AzureWebJobs.hello.Disabled", "x-y"} {
		if err := ValidateSettingName(ok); err != nil {
			t.Errorf("ValidateSettingName(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "A=B", "1A", "A B", "A\x00"} {
		if err := ValidateSettingName(bad); err == nil {
			t.Errorf("ValidateSettingName(%q) accepted", bad)
		}
	}
}
