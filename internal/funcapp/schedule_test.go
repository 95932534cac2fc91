package funcapp

import (
	"testing"
	"time"
)

func TestScheduleNext(t *testing.T) {
	utc := func(s string) time.Time {
		t.Helper()
		v, err := time.Parse("2006-01-02 15:04:05.999", s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		expr, after, want string
	}{
		{"* * * * * *", "2024-01-01 00:00:00", "2024-01-01 00:00:01"},
		{"* * * * * *", "2024-01-01 00:00:00.5", "2024-01-01 00:00:01"},
		{"0 * * * * *", "2024-01-01 00:00:00", "2024-01-01 00:01:00"},
		{"0 */5 * * * *", "2024-01-01 10:03:07", "2024-01-01 10:05:00"},
		{"0 */5 * * * *", "2024-01-01 23:55:00", "2024-01-02 00:00:00"},
		{"30 15 9 * * *", "2024-01-01 09:15:30", "2024-01-02 09:15:30"},
		{"0 0 9-17/4 * * *", "2024-01-01 10:00:00", "2024-01-01 13:00:00"},
		{"0 0 0 1 1 *", "2024-06-01 00:00:00", "2025-01-01 00:00:00"},
		{"0 0 0 29 Feb *", "2024-03-01 00:00:00", "2028-02-29 00:00:00"},
		{"0 0 0 31 * *", "2024-04-01 00:00:00", "2024-05-31 00:00:00"},
		{"0 0 12 * * Mon-Fri", "2024-01-05 12:00:00", "2024-01-08 12:00:00"}, // Friday to Monday
		{"0 0 12 * * 0", "2024-01-01 00:00:00", "2024-01-07 12:00:00"},       // Sunday
		{"0 0 12 * * sat,SUN", "2024-01-01 00:00:00", "2024-01-06 12:00:00"},
		{"0 0 0 13 * Fri", "2024-01-01 00:00:00", "2024-09-13 00:00:00"}, // both must match
		{"0 30 9 * jan-mar/2 *", "2024-02-01 00:00:00", "2024-03-01 09:30:00"},
		{"15,45 0 0 * * *", "2024-01-01 00:00:15", "2024-01-01 00:00:45"},
		{"10/20 * * * * *", "2024-01-01 00:00:31", "2024-01-01 00:00:50"},
		{"0 0 0 29 2 1", "2024-01-01 00:00:00", "2044-02-29 00:00:00"},
	}
	for _, tc := range tests {
		t.Run(tc.expr+"|"+tc.after, func(t *testing.T) {
			s, err := ParseSchedule(tc.expr)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := s.Next(utc(tc.after)), utc(tc.want); !got.Equal(want) {
				t.Errorf("Next(%s) = %s, want %s", tc.after, got, want)
			}
		})
	}
}

func TestScheduleNextDST(t *testing.T) {
	loc, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Skip(err)
	}
	s := mustSchedule(t, "0 30 2 * * *")
	// 2024-03-31 02:30 does not exist in Paris: the next match is a day later.
	got := s.Next(time.Date(2024, 3, 30, 12, 0, 0, 0, loc))
	if want := time.Date(2024, 3, 30, 2, 30, 0, 0, loc).AddDate(0, 0, 2); !got.Equal(want) {
		t.Errorf("Next = %s, want %s", got, want)
	}
	// Hourly across the autumn change must always move forward.
	h := mustSchedule(t, "0 0 * * * *")
	at := time.Date(2024, 10, 27, 0, 30, 0, 0, loc)
	for range 5 {
		next := h.Next(at)
		if !next.After(at) || next.Sub(at) > time.Hour {
			t.Fatalf("Next(%s) = %s, want within the next hour", at, next)
		}
		at = next
	}
}

func TestParseScheduleErrors(t *testing.T) {
	tests := []struct{ expr, want string }{
		{"* * * * *", `schedule "* * * * *": want 6 fields (second minute hour day month day-of-week), got 5`},
		{"00:05:00", `schedule "00:05:00": TimeSpan schedules are not supported; use six NCRONTAB fields (second minute hour day month day-of-week)`},
		{"60 * * * * *", `schedule "60 * * * * *": second field "60": 60 is out of range 0-59`},
		{"* * 24 * * *", `schedule "* * 24 * * *": hour field "24": 24 is out of range 0-23`},
		{"* * * 0 * *", `schedule "* * * 0 * *": day field "0": 0 is out of range 1-31`},
		{"* * * * 13 *", `schedule "* * * * 13 *": month field "13": 13 is out of range 1-12`},
		{"* * * * * 7", `schedule "* * * * * 7": day-of-week field "7": 7 is out of range 0-6`},
		{"* * * * Foo *", `schedule "* * * * Foo *": month field "Foo": "Foo" is not a number from 1 to 12 or a name jan..dec`},
		{"x * * * * *", `schedule "x * * * * *": second field "x": "x" is not a number from 0 to 59`},
		{"5-1 * * * * *", `schedule "5-1 * * * * *": second field "5-1": range 5-1 is backwards`},
		{"*/0 * * * * *", `schedule "*/0 * * * * *": second field "*/0": step "0" must be a number from 1 to 60`},
		{"1,,2 * * * * *", `schedule "1,,2 * * * * *": second field "1,,2": empty value`},
		{"-1 * * * * *", `schedule "-1 * * * * *": second field "-1": "" is not a number from 0 to 59`},
		{"0 0 0 30 Feb *", `schedule "0 0 0 30 Feb *": the day never occurs in the selected months`},
	}
	for _, tc := range tests {
		t.Run(tc.expr, func(t *testing.T) {
			got, err := ParseSchedule(tc.expr)
			checkInvalid(t, err, tc.want)
			if got != nil {
				t.Errorf("schedule = %v, want nil", got)
			}
		})
	}
}
