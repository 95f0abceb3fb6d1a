package provisioning

import (
	"fmt"
	"time"
	_ "time/tzdata" // America/Toronto without the system's zone files

	"github.com/sesame-idp/sesame/config"
)

// Calendar counts business days: Monday to Friday, except holidays, in a
// time zone.
type Calendar struct {
	loc    *time.Location
	quebec bool
	extra  map[string]bool // YYYY-MM-DD
}

// NewCalendar builds the calendar of the configuration: holidays "quebec"
// (QuebecHolidays of every year) or "none", plus the extra days, in the
// time zone (America/Toronto when empty).
func NewCalendar(cfg config.Provisioning) (*Calendar, error) {
	tz := cfg.TimeZone
	if tz == "" {
		tz = "America/Toronto"
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return nil, fmt.Errorf("provisioning: time zone %q: %w", tz, err)
	}
	c := &Calendar{loc: loc, quebec: cfg.Holidays == "" || cfg.Holidays == "quebec", extra: map[string]bool{}}
	for _, d := range cfg.ExtraHolidays {
		t, err := time.Parse(time.DateOnly, d)
		if err != nil {
			return nil, fmt.Errorf("provisioning: extra holiday %q: want YYYY-MM-DD", d)
		}
		c.extra[t.Format(time.DateOnly)] = true
	}
	return c, nil
}

// QuebecHolidays returns the statutory holidays of Québec (Loi sur les
// normes du travail, art. 60 and the Loi sur la fête nationale) in year:
// New Year's Day; Good Friday (the law lets the employer pick Good Friday
// or Easter Monday: Good Friday here); Journée nationale des patriotes,
// the Monday before May 25; the Fête nationale, June 24 (June 25 when the
// 24th is a Sunday); Canada Day, July 1 (July 2 when the 1st is a Sunday);
// Labour Day, the first Monday of September; Thanksgiving, the second
// Monday of October; Christmas Day. Other holidays on a weekend are not
// moved. Dates are at midnight UTC.
func QuebecHolidays(year int) []time.Time {
	d := func(m time.Month, day int) time.Time { return time.Date(year, m, day, 0, 0, 0, 0, time.UTC) }
	easter := easterSunday(year)
	patriotes := d(time.May, 24)
	for patriotes.Weekday() != time.Monday {
		patriotes = patriotes.AddDate(0, 0, -1)
	}
	fete := d(time.June, 24)
	if fete.Weekday() == time.Sunday {
		fete = d(time.June, 25)
	}
	canada := d(time.July, 1)
	if canada.Weekday() == time.Sunday {
		canada = d(time.July, 2)
	}
	return []time.Time{
		d(time.January, 1),
		easter.AddDate(0, 0, -2), // Good Friday
		patriotes,
		fete,
		canada,
		nthMonday(year, time.September, 1),
		nthMonday(year, time.October, 2),
		d(time.December, 25),
	}
}

// easterSunday is the Gregorian Easter (anonymous Gregorian algorithm).
func easterSunday(year int) time.Time {
	a := year % 19
	b, c := year/100, year%100
	d, e := b/4, b%4
	f := (b + 8) / 25
	g := (b - f + 1) / 3
	h := (19*a + b - d - g + 15) % 30
	i, k := c/4, c%4
	l := (32 + 2*e + 2*i - h - k) % 7
	m := (a + 11*h + 22*l) / 451
	month := (h + l - 7*m + 114) / 31
	day := (h+l-7*m+114)%31 + 1
	return time.Date(year, time.Month(month), day, 0, 0, 0, 0, time.UTC)
}

func nthMonday(year int, month time.Month, n int) time.Time {
	t := time.Date(year, month, 1, 0, 0, 0, 0, time.UTC)
	for t.Weekday() != time.Monday {
		t = t.AddDate(0, 0, 1)
	}
	return t.AddDate(0, 0, 7*(n-1))
}

// IsBusinessDay reports whether the calendar day (year, month, day) is a
// business day.
func (c *Calendar) IsBusinessDay(year int, month time.Month, day int) bool {
	t := time.Date(year, month, day, 0, 0, 0, 0, time.UTC)
	if wd := t.Weekday(); wd == time.Saturday || wd == time.Sunday {
		return false
	}
	if c.extra[t.Format(time.DateOnly)] {
		return false
	}
	if c.quebec {
		for _, h := range QuebecHolidays(year) {
			if h.Equal(t) {
				return false
			}
		}
	}
	return true
}

// AddBusinessDays returns t plus n business days: the same wall-clock
// time, in the calendar's zone, on the n-th business day after t's day
// (from a weekend or a holiday, the count starts at the next business
// day). The result is in UTC.
func (c *Calendar) AddBusinessDays(t time.Time, n int) time.Time {
	lt := t.In(c.loc)
	y, m, d := lt.Date()
	day := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	for n > 0 {
		day = day.AddDate(0, 0, 1)
		if c.IsBusinessDay(day.Year(), day.Month(), day.Day()) {
			n--
		}
	}
	return time.Date(day.Year(), day.Month(), day.Day(), lt.Hour(), lt.Minute(), lt.Second(), lt.Nanosecond(), c.loc).UTC()
}
