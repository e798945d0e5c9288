package cli

import (
	"flag"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// manSections splits the man page's COMMANDS section by subcommand and
// returns the flags each lists (the \fB\-\-NAME\fR after .TP).
func manSections(t *testing.T, page string) map[string][]string {
	t.Helper()
	_, cmds, ok := strings.Cut(page, ".SH COMMANDS\n")
	if !ok {
		t.Fatal("the man page has no COMMANDS section")
	}
	cmds, _, _ = strings.Cut(cmds, "\n.SH ")
	got := map[string][]string{}
	cur := ""
	lines := strings.Split(cmds, "\n")
	for i, line := range lines {
		if s, ok := strings.CutPrefix(line, `.SS "guard `); ok {
			cur, _, _ = strings.Cut(strings.TrimSuffix(s, `"`), " ")
			got[cur] = []string{}
		}
		if line == ".TP" && i+1 < len(lines) {
			name, ok := strings.CutPrefix(lines[i+1], `\fB\-\-`)
			if !ok {
				t.Fatalf("a .TP in %s does not start with a flag: %q", cur, lines[i+1])
			}
			name, _, _ = strings.Cut(name, `\fR`)
			got[cur] = append(got[cur], strings.ReplaceAll(name, `\-`, "-"))
		}
	}
	return got
}

// The man page lists, under each command, exactly the flags of the flag
// set that command parses; each completion script offers them too.
func TestManAndCompletionsListEveryFlag(t *testing.T) {
	c := New(Config{})
	var man strings.Builder
	if err := c.writeMan(&man); err != nil {
		t.Fatal(err)
	}
	sections := manSections(t, man.String())
	scripts := map[string]func(*strings.Builder) error{
		"bash": func(b *strings.Builder) error { return c.writeBash(b) },
		"zsh":  func(b *strings.Builder) error { return c.writeZsh(b) },
		"fish": func(b *strings.Builder) error { return c.writeFish(b) },
	}
	text := map[string]string{}
	for sh, gen := range scripts {
		var b strings.Builder
		if err := gen(&b); err != nil {
			t.Fatal(err)
		}
		text[sh] = b.String()
	}
	n := 0
	for _, cmd := range commands {
		if cmd.hidden {
			if _, ok := sections[cmd.name]; ok {
				t.Errorf("the man page lists the hidden command %s", cmd.name)
			}
			continue
		}
		listed, ok := sections[cmd.name]
		if !ok {
			t.Errorf("the man page has no section for %s", cmd.name)
			continue
		}
		var want []string
		c.flagsOf(cmd).VisitAll(func(f *flag.Flag) { want = append(want, f.Name) })
		if strings.Join(listed, " ") != strings.Join(want, " ") {
			t.Errorf("man page, %s: lists %v, the flag set has %v", cmd.name, listed, want)
		}
		for _, name := range want {
			n++
			for sh, s := range text {
				var needle string
				switch sh {
				case "bash":
					needle = "--" + name + " "
				case "zsh":
					needle = "'--" + name
				case "fish":
					needle = "__fish_seen_subcommand_from " + cmd.name + "' -l " + name + " "
				}
				if !strings.Contains(s, needle) {
					t.Errorf("%s completion: no %q for %s", sh, needle, cmd.name)
				}
			}
		}
	}
	if n < 30 {
		t.Errorf("only %d flags in all: the flag sets were not found", n)
	}
}

// Every flag the package's sources register (a FlagSet method call with
// a literal name) is in some command's flag set, so in the man page: a
// flag registered on a set no command parses would be missing from both.
func TestEveryRegisteredFlagIsDocumented(t *testing.T) {
	inSets := map[string]bool{}
	c := New(Config{})
	for _, cmd := range commands {
		c.flagsOf(cmd).VisitAll(func(f *flag.Flag) { inSets[f.Name] = true })
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	found := 0
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, file, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || !registers[sel.Sel.Name] || len(call.Args) < 2 {
				return true
			}
			// Var(value, name, usage) and XxxVar(p, name, def, usage): the
			// name is the second argument; Xxx(name, def, usage) the first.
			arg := call.Args[0]
			if strings.HasSuffix(sel.Sel.Name, "Var") {
				arg = call.Args[1]
			}
			lit, ok := arg.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			name, _ := strconv.Unquote(lit.Value)
			found++
			if !inSets[name] {
				t.Errorf("%s: flag %q is registered but no command's flag set has it", fset.Position(call.Pos()), name)
			}
			return true
		})
	}
	if found < 20 {
		t.Errorf("found only %d flag registrations in the sources", found)
	}
}

var registers = map[string]bool{
	"Var": true, "BoolVar": true, "StringVar": true, "IntVar": true, "DurationVar": true, "UintVar": true,
	"Int64Var": true, "Uint64Var": true, "Float64Var": true, "TextVar": true, "Func": true, "BoolFunc": true,
	"Bool": true, "String": true, "Int": true, "Duration": true,
}
