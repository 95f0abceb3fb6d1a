package layout

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/sesame-idp/sesame/"

// imports returns each package of the module with the module packages it
// imports (not its tests).
func imports(t *testing.T) map[string][]string {
	t.Helper()
	cmd := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, "./...")
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	graph := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		pkg := strings.TrimPrefix(f[0], module)
		var deps []string
		for _, d := range f[1:] {
			if strings.HasPrefix(d, module) {
				deps = append(deps, strings.TrimPrefix(d, module))
			}
		}
		graph[pkg] = deps
	}
	if len(graph) < 10 {
		t.Fatalf("go list found %d packages", len(graph))
	}
	return graph
}

// handlers are the packages that serve pages or an API: they stand on
// flow, web and users, never on one another.
var handlers = []string{"idp/login", "idp/mfa", "idp/account", "idp/api", "provisioning"}

func TestHandlersDoNotImportEachOther(t *testing.T) {
	for pkg, deps := range imports(t) {
		if !slices.Contains(handlers, pkg) {
			continue
		}
		for _, d := range deps {
			if slices.Contains(handlers, d) {
				t.Errorf("%s imports %s: handler packages stand on idp/flow, idp/web and idp/users, not on one another", pkg, d)
			}
		}
	}
}

func TestLayout(t *testing.T) {
	graph := imports(t)
	signIn := []string{"idp/flow", "idp/login", "idp/mfa"}
	for pkg, deps := range graph {
		for _, d := range deps {
			switch {
			case (pkg == "provisioning" || strings.HasPrefix(pkg, "provisioning/")) && slices.Contains(signIn, d):
				t.Errorf("%s imports %s: provisioning never imports sign-in code", pkg, d)
			case (pkg == "idp/store" || pkg == "idp/ephemeral") && d != "":
				t.Errorf("%s imports %s: the store contracts import nothing of the project", pkg, d)
			case slices.Contains([]string{"idp/flow", "idp/web", "idp/users"}, pkg) && slices.Contains(handlers, d):
				t.Errorf("%s imports the handler package %s: the arrow points the other way", pkg, d)
			case isBackend(d) && !strings.HasPrefix(pkg, "cmd/") && !strings.HasPrefix(pkg, "internal/") && !isBackend(pkg):
				t.Errorf("%s imports the concrete backend %s: only cmd/ picks backends", pkg, d)
			}
		}
	}
	// The flow's parts are where DESIGN §2 puts them.
	for _, pkg := range []string{"idp/web", "idp/flow", "idp/account", "idp/users", "idp/keys", "idp/mfa", "idp/login"} {
		if _, ok := graph[pkg]; !ok {
			t.Errorf("package %s is missing", pkg)
		}
	}
}

// TestOneFilePerFactor: idp/mfa holds one file per factor plus the pages,
// not one handler for everything.
func TestOneFilePerFactor(t *testing.T) {
	for _, f := range []string{"handler.go", "account.go"} {
		if _, err := os.Stat(filepath.Join("../../idp/mfa", f)); err == nil {
			t.Errorf("idp/mfa/%s is back: factors live in a file each (totp.go, recovery.go…), pages in pages.go", f)
		}
	}
	for _, f := range []string{"factor.go", "totp.go", "recovery.go", "pages.go"} {
		if _, err := os.Stat(filepath.Join("../../idp/mfa", f)); err != nil {
			t.Errorf("idp/mfa/%s: %v", f, err)
		}
	}
}

func isBackend(pkg string) bool {
	switch pkg {
	case "idp/store/postgres", "idp/store/sqlite", "idp/ephemeral/redis", "idp/ephemeral/memory":
		return true
	}
	return false
}
