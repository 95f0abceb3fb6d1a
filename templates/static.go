package templates

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"path"
	"sort"
	"strings"
	"time"
)

// StaticPrefix is the path the lead mounts Static at; the pages link their
// CSS, JavaScript and images under it.
const StaticPrefix = "/static/"

// contentTypes fixes the types of the usual web files, whatever the
// system's mime tables say.
var contentTypes = map[string]string{
	".css":   "text/css; charset=utf-8",
	".js":    "text/javascript; charset=utf-8",
	".svg":   "image/svg+xml",
	".png":   "image/png",
	".jpg":   "image/jpeg",
	".jpeg":  "image/jpeg",
	".gif":   "image/gif",
	".webp":  "image/webp",
	".ico":   "image/x-icon",
	".woff2": "font/woff2",
	".txt":   "text/plain; charset=utf-8",
}

type staticFile struct {
	data        []byte
	contentType string
	etag        string
	version     string
}

// loadStatic reads every file under static/ (embedded, and the override's
// additions or replacements).
func loadStatic(fsys, base, override fs.FS) (map[string]staticFile, map[string]string, error) {
	names := map[string]bool{}
	for _, src := range []fs.FS{base, override} {
		if src == nil {
			continue
		}
		err := fs.WalkDir(src, "static", func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) && p == "static" {
					return fs.SkipDir
				}
				return err
			}
			if !d.IsDir() {
				names[strings.TrimPrefix(p, "static/")] = true
			}
			return nil
		})
		if err != nil {
			return nil, nil, fmt.Errorf("templates: static: %w", err)
		}
	}
	files := map[string]staticFile{}
	urls := map[string]string{}
	for name := range names {
		data, err := fs.ReadFile(fsys, "static/"+name)
		if err != nil {
			return nil, nil, fmt.Errorf("templates: %w", err)
		}
		ctype, ok := contentTypes[strings.ToLower(path.Ext(name))]
		if !ok {
			ctype = mime.TypeByExtension(path.Ext(name))
		}
		if ctype == "" {
			ctype = http.DetectContentType(data)
		}
		sum := sha256.Sum256(data)
		version := hex.EncodeToString(sum[:6])
		files[name] = staticFile{data: data, contentType: ctype, etag: `"` + hex.EncodeToString(sum[:16]) + `"`, version: version}
		urls[name] = StaticPrefix + name + "?v=" + version
	}
	return files, urls, nil
}

// Static serves the files of static/ (CSS, JavaScript, images) with their
// content type, an ETag and cache headers: a year, immutable, when the
// request carries the file's current version (?v=…, as the pages link
// them), a day otherwise. Mount it at /static/, with or without
// http.StripPrefix.
func (e *Engine) Static() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
			return
		}
		f, ok := e.static[cleanStaticPath(r.URL.Path)]
		if !ok {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Type", f.contentType)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("ETag", f.etag)
		if r.URL.Query().Get("v") == f.version {
			h.Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			h.Set("Cache-Control", "public, max-age=86400")
		}
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.data))
	})
}

// hiddenInput is a name and value to render as <input type="hidden">.
type hiddenInput struct{ Name, Value string }

// queryInputs returns the query parameters of a URL, sorted by name.
func queryInputs(raw string) []hiddenInput {
	u, err := url.Parse(raw)
	if err != nil {
		return nil
	}
	q := u.Query()
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []hiddenInput
	for _, k := range keys {
		for _, v := range q[k] {
			out = append(out, hiddenInput{k, v})
		}
	}
	return out
}
