package provisioning

import (
	"testing"
	"time"

	"github.com/sesame-idp/sesame/config"
)

func TestQuebecHolidays(t *testing.T) {
	for year, want := range map[int][]string{
		// 2026: Easter April 5; May 24 is a Sunday; June 24 and July 1 Wednesdays.
		2026: {"2026-01-01", "2026-04-03", "2026-05-18", "2026-06-24", "2026-07-01", "2026-09-07", "2026-10-12", "2026-12-25"},
		// 2025: Easter April 20.
		2025: {"2025-01-01", "2025-04-18", "2025-05-19", "2025-06-24", "2025-07-01", "2025-09-01", "2025-10-13", "2025-12-25"},
		// 2029: June 24 and July 1 are Sundays: the holidays move to Monday.
		2029: {"2029-01-01", "2029-03-30", "2029-05-21", "2029-06-25", "2029-07-02", "2029-09-03", "2029-10-08", "2029-12-25"},
	} {
		var got []string
		for _, d := range QuebecHolidays(year) {
			got = append(got, d.Format(time.DateOnly))
		}
		if len(got) != len(want) {
			t.Fatalf("%d: %v, want %v", year, got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("%d: %v, want %v", year, got, want)
			}
		}
	}
}

func TestAddBusinessDays(t *testing.T) {
	cal, err := NewCalendar(config.DefaultProvisioning())
	if err != nil {
		t.Fatal(err)
	}
	mtl, _ := time.LoadLocation("America/Toronto")
	at := func(s string) time.Time {
		v, err := time.ParseInLocation("2006-01-02 15:04", s, mtl)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, c := range []struct{ from, want string }{
		{"2026-11-03 10:00", "2026-11-06 10:00"}, // Tuesday → Friday
		{"2026-11-05 16:30", "2026-11-10 16:30"}, // Thursday → Tuesday (weekend)
		{"2026-11-07 09:00", "2026-11-11 09:00"}, // Saturday: counts from Monday → Wednesday
		{"2026-12-22 10:00", "2026-12-28 10:00"}, // Christmas Friday skipped: Wed 23, Thu 24, Mon 28
		{"2026-04-01 10:00", "2026-04-07 10:00"}, // Good Friday April 3: Thu 2, Mon 6, Tue 7 (Easter Monday is a business day)
		{"2026-05-14 10:00", "2026-05-20 10:00"}, // Patriotes May 18: Fri 15, Tue 19, Wed 20
		{"2026-06-23 10:00", "2026-06-29 10:00"}, // June 24 Wed: Thu 25, Fri 26, Mon 29
		{"2026-03-06 10:00", "2026-03-11 10:00"}, // across the change to daylight time: still 10:00 local
		{"2026-12-31 23:59", "2027-01-06 23:59"}, // New Year: Mon 4, Tue 5, Wed 6
	} {
		got := cal.AddBusinessDays(at(c.from), 3)
		if want := at(c.want).UTC(); !got.Equal(want) || got.Location() != time.UTC {
			t.Errorf("%s + 3 business days = %s, want %s", c.from, got.In(mtl), c.want)
		}
	}
	// The day is the one of Montréal, not of UTC: Friday 21:00 EST is
	// Saturday in UTC.
	if got, want := cal.AddBusinessDays(at("2026-11-06 21:00"), 3), at("2026-11-11 21:00").UTC(); !got.Equal(want) {
		t.Errorf("Friday evening: %s, want %s", got.In(mtl), want.In(mtl))
	}

	none, err := NewCalendar(config.Provisioning{Holidays: "none", TimeZone: "America/Toronto", ExtraHolidays: []string{"2026-11-04"}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := none.AddBusinessDays(at("2026-12-22 10:00"), 3), at("2026-12-25 10:00").UTC(); !got.Equal(want) {
		t.Errorf("holidays none: %s, want %s", got.In(mtl), want.In(mtl))
	}
	if got, want := none.AddBusinessDays(at("2026-11-03 10:00"), 3), at("2026-11-09 10:00").UTC(); !got.Equal(want) {
		t.Errorf("extra holiday: %s, want %s", got.In(mtl), want.In(mtl))
	}
	if _, err := NewCalendar(config.Provisioning{ExtraHolidays: []string{"24 juin"}}); err == nil {
		t.Error("a bad extra holiday was accepted")
	}
}
