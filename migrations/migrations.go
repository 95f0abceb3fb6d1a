package migrations

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strconv"
)

//go:embed postgres/*.sql sqlite/*.sql
var embedded embed.FS

// The embedded migrations of each dialect, rooted at their directory.
var (
	Postgres = mustSub("postgres")
	SQLite   = mustSub("sqlite")
)

func mustSub(dir string) fs.FS {
	sub, err := fs.Sub(embedded, dir)
	if err != nil {
		panic(err) // dir is a literal embedded above
	}
	return sub
}

// ErrSchemaTooNew: the database holds a schema version greater than the
// newest migration this binary knows. Running against it could corrupt data
// written by a newer release, so the backends refuse.
var ErrSchemaTooNew = errors.New("migrations: database schema is newer than this binary")

// Migration is one file: version NNNN and name taken from NNNN_name.sql.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

var fileName = regexp.MustCompile(`^([0-9]{4})_([a-z0-9]+(?:_[a-z0-9]+)*)\.sql$`)

// Load reads the *.sql files at the root of fsys and returns them sorted by
// version. It fails on a file name that is not NNNN_name.sql, on a duplicate
// version, and on a gap: versions run from 1 without holes.
func Load(fsys fs.FS) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	var ms []Migration
	for _, e := range entries {
		if e.IsDir() || path.Ext(e.Name()) != ".sql" {
			continue
		}
		m := fileName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("migration %q: name is not NNNN_name.sql", e.Name())
		}
		version, _ := strconv.Atoi(m[1]) // four digits
		body, err := fs.ReadFile(fsys, e.Name())
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", e.Name(), err)
		}
		ms = append(ms, Migration{Version: version, Name: m[2], SQL: string(body)})
	}
	if len(ms) == 0 {
		return nil, errors.New("no migrations found")
	}
	slices.SortFunc(ms, func(a, b Migration) int { return a.Version - b.Version })
	for i, m := range ms {
		if i > 0 && m.Version == ms[i-1].Version {
			return nil, fmt.Errorf("migration version %04d appears twice (%s, %s)", m.Version, ms[i-1].Name, m.Name)
		}
		if m.Version != i+1 {
			return nil, fmt.Errorf("migration version %04d missing (next is %04d_%s)", i+1, m.Version, m.Name)
		}
	}
	return ms, nil
}

// Pending returns the migrations of ms (as returned by Load) that come after
// version current, the schema version of the database (0 when empty). It
// returns ErrSchemaTooNew when current is greater than the newest of ms.
func Pending(ms []Migration, current int) ([]Migration, error) {
	latest := 0
	if len(ms) > 0 {
		latest = ms[len(ms)-1].Version
	}
	if current > latest {
		return nil, fmt.Errorf("%w: database at version %d, newest known is %d", ErrSchemaTooNew, current, latest)
	}
	if current < 0 {
		return nil, fmt.Errorf("invalid schema version %d", current)
	}
	return ms[current:], nil
}
