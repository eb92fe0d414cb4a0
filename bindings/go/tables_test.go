package rarchlog

// The binding's tables against rarch_logging.h: the status sentinels (errors.go), the fields of
// Options (their comments give the key and the header's "(environment, default)"), what
// pairs() sets, the README's table of options, and the fields of Stats. The header is looked
// for in $RARCH_LOGGING_INCLUDE, the -I directories of $CGO_CFLAGS and the repository; without
// it these tests are skipped, saying so.

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func header(t *testing.T) string {
	t.Helper()
	var dirs []string
	if d := os.Getenv("RARCH_LOGGING_INCLUDE"); d != "" {
		dirs = append(dirs, d)
	}
	for _, f := range strings.Fields(os.Getenv("CGO_CFLAGS")) {
		if d, ok := strings.CutPrefix(f, "-I"); ok && d != "" {
			dirs = append(dirs, d)
		}
	}
	dirs = append(dirs, filepath.Join("..", "..", "include"))
	var tried []string
	for _, d := range dirs {
		p := filepath.Join(d, "rarch_logging.h")
		if b, err := os.ReadFile(p); err == nil {
			return string(b)
		}
		tried = append(tried, p)
	}
	t.Skipf("rarch_logging.h not found (set RARCH_LOGGING_INCLUDE); tried %s", strings.Join(tried, ", "))
	return ""
}

func between(t *testing.T, text, start, end string) string {
	t.Helper()
	_, rest, ok := strings.Cut(text, start)
	if !ok {
		t.Fatalf("no %q in the header", start)
	}
	body, _, ok := strings.Cut(rest, end)
	if !ok {
		t.Fatalf("no %q after %q", end, start)
	}
	return body
}

// headerOptions: [key, text in brackets] of the list of options of rarch_options_set.
func headerOptions(t *testing.T, h string) [][2]string {
	doc := between(t, h, "Sets one option", "enum rarch_status rarch_options_set(")
	var out [][2]string
	for _, m := range regexp.MustCompile("(?m)^ \\* - `(\\w+)` \\(([^)]*)\\)").FindAllStringSubmatch(doc, -1) {
		out = append(out, [2]string{m[1], m[2]})
	}
	if len(out) < 20 {
		t.Fatalf("only %d options in the header: %v", len(out), out)
	}
	return out
}

// splitDefault: "RARCH_X, value" (or "OTEL_X, value") -> ("RARCH_X", "value"); "value" -> ("", "value").
func splitDefault(text string) (env, def string) {
	if e, d, ok := strings.Cut(text, ", "); ok && (strings.HasPrefix(e, "RARCH_") || strings.HasPrefix(e, "OTEL_")) {
		return e, d
	}
	return "", text
}

func TestStatusesAreTheHeaders(t *testing.T) {
	h := header(t)
	var inHeader []string
	for _, m := range regexp.MustCompile(`(?m)^\s*(RARCH_\w+) = \d+,?$`).FindAllStringSubmatch(
		between(t, h, "typedef enum rarch_status {", "} rarch_status;"), -1) {
		if m[1] != "RARCH_OK" {
			inHeader = append(inHeader, m[1])
		}
	}
	src, err := os.ReadFile("errors.go")
	if err != nil {
		t.Fatal(err)
	}
	var sentinels []string
	for _, m := range regexp.MustCompile(`(?m)^\s*Err\w+\s+error = Status\(C\.(RARCH_ERR_\w+)\)`).FindAllStringSubmatch(string(src), -1) {
		sentinels = append(sentinels, m[1])
	}
	if !slices.Equal(sentinels, inHeader) {
		t.Errorf("errors.go's sentinels %v, the header's statuses %v", sentinels, inHeader)
	}
}

func TestOptionsAreTheHeaders(t *testing.T) {
	want := headerOptions(t, header(t))
	// The comment of each field of Options: "key (environment, default): ...".
	f, err := parser.ParseFile(token.NewFileSet(), "options.go", nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	var got [][2]string
	var fields []string
	ast.Inspect(f, func(n ast.Node) bool {
		ts, ok := n.(*ast.TypeSpec)
		if !ok || ts.Name.Name != "Options" {
			return true
		}
		for _, fl := range ts.Type.(*ast.StructType).Fields.List {
			if fl.Names[0].Name == "Raw" {
				continue
			}
			fields = append(fields, fl.Names[0].Name)
			c := ""
			if fl.Comment != nil {
				c = strings.TrimSpace(fl.Comment.Text())
			}
			key, rest, _ := strings.Cut(c, " (")
			text, _, _ := strings.Cut(rest, ")")
			got = append(got, [2]string{key, text})
		}
		return false
	})
	if !slices.Equal(got, want) {
		for i := range max(len(got), len(want)) {
			var g, w [2]string
			if i < len(got) {
				g = got[i]
			}
			if i < len(want) {
				w = want[i]
			}
			if g != w {
				t.Errorf("options.go, field %d: comment %q (%s), the header's %q (%s)", i, g[0], g[1], w[0], w[1])
			}
		}
	}

	// pairs() sets every key, in the header's order, when every field is set.
	var o Options
	v := reflect.ValueOf(&o).Elem()
	for i := range v.NumField() {
		fv := v.Field(i)
		switch fv.Kind() {
		case reflect.String:
			fv.SetString("x")
		case reflect.Int8:
			fv.SetInt(int64(LevelInfo))
		case reflect.Pointer:
			fv.Set(reflect.New(fv.Type().Elem()))
		}
	}
	var keys, wantKeys []string
	for _, p := range o.pairs() {
		keys = append(keys, p.key)
	}
	for _, w := range want {
		wantKeys = append(wantKeys, w[0])
	}
	if !slices.Equal(keys, wantKeys) {
		t.Errorf("pairs() with every field set gives %v, the header's keys are %v", keys, wantKeys)
	}

	// README.md: | Go field | C key | type | env / default |
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	table := between(t, string(readme), "| Go field | C key | type | env / default |", "\n\n")
	rows := strings.Split(strings.TrimSpace(table), "\n")[1:]
	for i, w := range want {
		if i >= len(rows) {
			t.Errorf("README.md: no row for %s", w[0])
			continue
		}
		cells := strings.Split(strings.ReplaceAll(rows[i], "`", ""), "|")
		for j := range cells {
			cells[j] = strings.TrimSpace(cells[j])
		}
		if len(cells) < 5 || cells[1] != fields[i] || cells[2] != w[0] {
			t.Errorf("README.md, row %d: %q, want %s and %s", i+1, rows[i], fields[i], w[0])
			continue
		}
		env, def := splitDefault(w[1])
		got := cells[4]
		if env != "" {
			var ok bool
			if got, ok = strings.CutPrefix(got, env+" / "); !ok {
				t.Errorf("README.md, %s: %q, want %s / ...", w[0], cells[4], env)
				continue
			}
		}
		if !strings.HasPrefix(def, "empty") && got != def && !strings.HasPrefix(got, def+" ") {
			t.Errorf("README.md, %s: default %q, the header's %q", w[0], got, def)
		}
	}
}

func TestStatsAreTheHeaders(t *testing.T) {
	h := header(t)
	var inHeader []string
	for _, m := range regexp.MustCompile(`(?m)^\s+\w+ (\w+);$`).FindAllStringSubmatch(
		between(t, h, "typedef struct rarch_statistics {", "} rarch_statistics;"), -1) {
		inHeader = append(inHeader, strings.ReplaceAll(m[1], "_", ""))
	}
	if len(inHeader) == 0 || inHeader[0] != "size" {
		t.Fatalf("rarch_statistics: %v", inHeader)
	}
	var fields []string
	st := reflect.TypeOf(Stats{})
	for i := range st.NumField() {
		fields = append(fields, strings.ToLower(st.Field(i).Name))
	}
	if !slices.Equal(fields, inHeader[1:]) {
		t.Errorf("Stats' fields %v, rarch_statistics' %v", fields, inHeader[1:])
	}
}
