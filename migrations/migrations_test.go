package migrations_test

import (
	"errors"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/sesame-idp/sesame/migrations"
)

// Both dialects must carry the same versions with the same names, so that a
// database can move from one backend to the other at a known version.
func TestDialectsMatch(t *testing.T) {
	pg, err := migrations.Load(migrations.Postgres)
	if err != nil {
		t.Fatalf("postgres: %v", err)
	}
	lite, err := migrations.Load(migrations.SQLite)
	if err != nil {
		t.Fatalf("sqlite: %v", err)
	}
	if len(pg) != len(lite) {
		t.Fatalf("postgres has %d migrations, sqlite %d", len(pg), len(lite))
	}
	for i := range pg {
		if pg[i].Version != lite[i].Version || pg[i].Name != lite[i].Name {
			t.Errorf("migration %d: postgres %04d_%s, sqlite %04d_%s",
				i, pg[i].Version, pg[i].Name, lite[i].Version, lite[i].Name)
		}
		if strings.TrimSpace(pg[i].SQL) == "" || strings.TrimSpace(lite[i].SQL) == "" {
			t.Errorf("migration %04d_%s is empty in one dialect", pg[i].Version, pg[i].Name)
		}
	}
}

func TestLoad(t *testing.T) {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	tests := []struct {
		name    string
		fsys    fstest.MapFS
		want    []migrations.Migration
		wantErr string
	}{
		{
			name: "sorted",
			fsys: fstest.MapFS{
				"0002_add_things.sql": file("B"),
				"0001_init.sql":       file("A"),
				"README.md":           file("ignored"),
			},
			want: []migrations.Migration{{Version: 1, Name: "init", SQL: "A"}, {Version: 2, Name: "add_things", SQL: "B"}},
		},
		{name: "empty", fsys: fstest.MapFS{}, wantErr: "no migrations"},
		{
			name:    "gap",
			fsys:    fstest.MapFS{"0001_init.sql": file("A"), "0003_c.sql": file("C")},
			wantErr: "version 0002 missing",
		},
		{
			name:    "not from one",
			fsys:    fstest.MapFS{"0002_b.sql": file("B")},
			wantErr: "version 0001 missing",
		},
		{
			name:    "duplicate",
			fsys:    fstest.MapFS{"0001_init.sql": file("A"), "0001_other.sql": file("B")},
			wantErr: "appears twice",
		},
		{
			name:    "bad name",
			fsys:    fstest.MapFS{"0001_init.sql": file("A"), "2_Oops.sql": file("B")},
			wantErr: "not NNNN_name.sql",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := migrations.Load(tt.fsys)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Load: error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("Load: %+v, want %+v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("migration %d: %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestPending(t *testing.T) {
	ms := []migrations.Migration{{Version: 1, Name: "a", SQL: "A"}, {Version: 2, Name: "b", SQL: "B"}, {Version: 3, Name: "c", SQL: "C"}}
	for _, tt := range []struct {
		current int
		want    []int
	}{
		{0, []int{1, 2, 3}},
		{1, []int{2, 3}},
		{3, nil},
	} {
		got, err := migrations.Pending(ms, tt.current)
		if err != nil {
			t.Fatalf("Pending(%d): %v", tt.current, err)
		}
		var versions []int
		for _, m := range got {
			versions = append(versions, m.Version)
		}
		if len(versions) != len(tt.want) {
			t.Fatalf("Pending(%d) = %v, want %v", tt.current, versions, tt.want)
		}
		for i := range versions {
			if versions[i] != tt.want[i] {
				t.Fatalf("Pending(%d) = %v, want %v", tt.current, versions, tt.want)
			}
		}
	}
	if _, err := migrations.Pending(ms, 4); !errors.Is(err, migrations.ErrSchemaTooNew) {
		t.Fatalf("Pending(4): %v, want ErrSchemaTooNew", err)
	}
}
