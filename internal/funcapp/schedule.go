package funcapp

import (
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"time"

	"github.com/hotswap/hotswap"
)

// Schedule is a parsed six-field NCRONTAB expression, as used by Azure
// Functions timer triggers: "{second} {minute} {hour} {day} {month}
// {day-of-week}". Like NCrontab, a time matches when every field matches:
// a restricted day and a restricted day of week must both match (so
// "0 0 0 13 * Fri" is Friday the 13th), unlike classic cron.
type Schedule struct {
	expr   string
	second uint64 // bit n: second n
	minute uint64
	hour   uint64
	day    uint64 // bits 1-31
	month  uint64 // bits 1-12
	dow    uint64 // bits 0-6, Sunday = 0
}

var monthNames = []string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}
var dayNames = []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

type field struct {
	name     string
	min, max int
	names    []string // names for min, min+1, ...
}

var fields = [6]field{
	{"second", 0, 59, nil},
	{"minute", 0, 59, nil},
	{"hour", 0, 23, nil},
	{"day", 1, 31, nil},
	{"month", 1, 12, monthNames},
	{"day-of-week", 0, 6, dayNames},
}

// ParseSchedule parses a six-field NCRONTAB expression. Each field is "*",
// a value, a range "a-b", a step "*/n", "a-b/n" or "a/n" (from a to the
// maximum), or a comma-separated list of those. Months accept Jan..Dec and
// days of week Sun..Sat (0-6, Sunday = 0), case-insensitive.
func ParseSchedule(s string) (*Schedule, error) {
	sc, err := parseSchedule(s)
	if err != nil {
		return nil, hotswap.Errorf(hotswap.Invalid, "schedule %q: %s", s, err)
	}
	return sc, nil
}

func parseSchedule(s string) (*Schedule, error) {
	f := strings.Fields(s)
	if len(f) != 6 {
		if strings.Count(s, ":") == 2 && len(f) == 1 {
			return nil, fmt.Errorf("TimeSpan schedules are not supported; use six NCRONTAB fields (second minute hour day month day-of-week)")
		}
		return nil, fmt.Errorf("want 6 fields (second minute hour day month day-of-week), got %d", len(f))
	}
	var bits [6]uint64
	for i, text := range f {
		b, err := parseField(text, &fields[i])
		if err != nil {
			return nil, fmt.Errorf("%s field %q: %s", fields[i].name, text, err)
		}
		bits[i] = b
	}
	sc := &Schedule{expr: strings.Join(f, " "), second: bits[0], minute: bits[1], hour: bits[2], day: bits[3], month: bits[4], dow: bits[5]}
	// Reject days that no selected month has, such as "30 Feb".
	possible := false
	for m := 1; m <= 12 && !possible; m++ {
		if sc.month&(1<<m) != 0 && sc.day&(1<<(daysIn(time.Month(m), 2000)+1)-1) != 0 {
			possible = true
		}
	}
	if !possible {
		return nil, fmt.Errorf("the day never occurs in the selected months")
	}
	return sc, nil
}

func parseField(text string, f *field) (uint64, error) {
	var bits uint64
	for part := range strings.SplitSeq(text, ",") {
		rng, stepText, hasStep := strings.Cut(part, "/")
		lo, hi := f.min, f.max
		switch {
		case rng == "*":
		case rng == "":
			return 0, fmt.Errorf("empty value")
		default:
			a, b, isRange := strings.Cut(rng, "-")
			var err error
			if lo, err = f.value(a); err != nil {
				return 0, err
			}
			hi = lo
			if isRange {
				if hi, err = f.value(b); err != nil {
					return 0, err
				}
				if hi < lo {
					return 0, fmt.Errorf("range %s is backwards", rng)
				}
			} else if hasStep {
				hi = f.max
			}
		}
		step := 1
		if hasStep {
			n, err := strconv.Atoi(stepText)
			if err != nil || n < 1 || n > f.max-f.min+1 {
				return 0, fmt.Errorf("step %q must be a number from 1 to %d", stepText, f.max-f.min+1)
			}
			step = n
		}
		for v := lo; v <= hi; v += step {
			bits |= 1 << v
		}
	}
	return bits, nil
}

func (f *field) value(s string) (int, error) {
	for i, n := range f.names {
		if strings.EqualFold(s, n) {
			return f.min + i, nil
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil || len(s) > 2 || s[0] == '+' || s[0] == '-' {
		if f.names != nil {
			return 0, fmt.Errorf("%q is not a number from %d to %d or a name %s..%s", s, f.min, f.max, f.names[0], f.names[len(f.names)-1])
		}
		return 0, fmt.Errorf("%q is not a number from %d to %d", s, f.min, f.max)
	}
	if n < f.min || n > f.max {
		return 0, fmt.Errorf("%d is out of range %d-%d", n, f.min, f.max)
	}
	return n, nil
}

func daysIn(m time.Month, year int) int {
	return time.Date(year, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// SubMinute reports whether the schedule can fire more than once a minute:
// its seconds field matches more than one second.
func (s *Schedule) SubMinute() bool { return bits.OnesCount64(s.second) > 1 }

// String returns the expression, with fields separated by single spaces.
func (s *Schedule) String() string { return s.expr }

// Next returns the first time strictly after after, at whole seconds in
// after's location, that matches the schedule; the zero time if none does
// within 30 years (such as Feb 29 on a day of week that excludes it).
func (s *Schedule) Next(after time.Time) time.Time {
	loc := after.Location()
	t := after.Truncate(time.Second).Add(time.Second)
	limit := t.Year() + 30
	for t.Year() <= limit {
		y, mo, d := t.Date()
		if s.month&(1<<mo) == 0 {
			t = advance(t, time.Date(y, mo+1, 1, 0, 0, 0, 0, loc))
			continue
		}
		if s.day&(1<<d) == 0 || s.dow&(1<<t.Weekday()) == 0 {
			t = advance(t, time.Date(y, mo, d+1, 0, 0, 0, 0, loc))
			continue
		}
		h, m, sec := t.Clock()
		if s.hour&(1<<h) == 0 {
			t = t.Add(time.Hour - time.Duration(m)*time.Minute - time.Duration(sec)*time.Second)
			continue
		}
		if s.minute&(1<<m) == 0 {
			t = t.Add(time.Minute - time.Duration(sec)*time.Second)
			continue
		}
		if s.second&(1<<sec) == 0 {
			t = t.Add(time.Second)
			continue
		}
		return t
	}
	return time.Time{}
}

// advance returns next, or when a time zone transition makes next not later
// than t, t plus an hour, so Next always makes progress.
func advance(t, next time.Time) time.Time {
	if next.After(t) {
		return next
	}
	return t.Add(time.Hour)
}
