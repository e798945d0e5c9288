package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"slices"
	"strings"
)

// flagSet is a subcommand's FlagSet that reports errors instead of exiting:
// a parse error is one line; the full usage is printed only for -h/--help.
// Help texts, the man page and the completions are all printed from these
// flag sets, so they list what the command really parses.
type flagSet struct {
	*flag.FlagSet
	synopsis string
	c        *CLI
}

func (c *CLI) newFlags(name, synopsis string) *flagSet {
	fs := &flagSet{flag.NewFlagSet(name, flag.ContinueOnError), synopsis, c}
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

var errDescribed = errors.New("described")

// flagsOf returns the flag set command cmd parses, by running it on a CLI
// whose describing hook ends it at its parse.
func (c *CLI) flagsOf(cmd command) *flagSet {
	var got *flagSet
	d := *c
	d.describing = func(fs *flagSet) { got = fs }
	if err := cmd.run(&d, nil); !errors.Is(err, errDescribed) || got == nil {
		panic(fmt.Sprintf("command %s did not parse a flag set (%v)", cmd.name, err))
	}
	return got
}

// parse parses args and turns a flag error into a usage error.
func (fs *flagSet) parse(args []string) error {
	if fs.c.describing != nil {
		fs.c.describing(fs)
		return errDescribed
	}
	err := fs.Parse(args)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, flag.ErrHelp):
		fs.printUsage(fs.c.stdout)
		return silent(0)
	}
	return usagef("%s: %s (see '%s %s --help')", fs.Name(), gnuFlags(err.Error()), fs.c.progName(), fs.Name())
}

// gnuFlags rewrites the flag package's "-name" in its error messages as
// "--name", the spelling the help texts use.
func gnuFlags(msg string) string { return singleDash.ReplaceAllString(msg, "$1--$2") }

var singleDash = regexp.MustCompile(`(: | flag | for )-(\w)`)

// printUsage prints the command's synopsis, summary and flags, GNU style.
func (fs *flagSet) printUsage(w io.Writer) {
	fmt.Fprintf(w, "usage: %s\n", strings.TrimSpace(fs.c.progName()+" "+fs.Name()+" "+fs.synopsis))
	if cmd, ok := lookup(fs.Name()); ok {
		fmt.Fprintf(w, "\n%s.\n", capitalize(cmd.summary))
	}
	flags := fs.flags()
	if len(flags) == 0 {
		return
	}
	fmt.Fprintln(w, "\nflags:")
	for _, f := range flags {
		fmt.Fprintf(w, "  %s\n", f.spec())
		for _, line := range wrap(f.help(), 70) {
			fmt.Fprintf(w, "        %s\n", line)
		}
	}
}

// flagDoc is one flag as help texts, the man page and completions show it.
type flagDoc struct {
	name    string
	value   string   // the placeholder; "" for a boolean flag
	usage   string   // the usage text without its backquotes
	def     string   // the default, "" when it is the zero value
	choices []string // the values it takes, when it takes only a few
}

// spec is "--name VALUE" or "--name".
func (f flagDoc) spec() string {
	if f.value == "" {
		return "--" + f.name
	}
	return "--" + f.name + " " + f.value
}

// help is the usage text with the default.
func (f flagDoc) help() string {
	if f.def == "" {
		return f.usage
	}
	return fmt.Sprintf("%s (default %s)", f.usage, f.def)
}

// flags returns the set's flags in name order.
func (fs *flagSet) flags() []flagDoc {
	var docs []flagDoc
	fs.VisitAll(func(f *flag.Flag) { docs = append(docs, docOf(f)) })
	return docs
}

func docOf(f *flag.Flag) flagDoc {
	name, usage := flag.UnquoteUsage(f)
	d := flagDoc{name: f.Name, usage: usage}
	if c, ok := f.Value.(interface{ choices() []string }); ok {
		d.choices = c.choices()
	}
	switch p, ok := f.Value.(interface{ placeholder() string }); {
	case isBool(f):
		d.value = ""
	case len(d.choices) > 0:
		d.value = strings.Join(d.choices, "|")
	case ok && (name == "value" || name == ""):
		d.value = p.placeholder()
	default:
		d.value = placeholders[name]
		if d.value == "" {
			d.value = strings.ToUpper(name)
		}
	}
	if !isZero(f) {
		d.def = f.DefValue
	}
	return d
}

// placeholders name the values of flags whose usage names none, by type.
var placeholders = map[string]string{
	"duration": "DURATION", "int": "N", "uint": "N", "int64": "N", "uint64": "N",
	"float": "NUMBER", "string": "STRING", "value": "VALUE",
}

func isBool(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// isZero reports whether the flag's default is its type's zero value,
// which help texts do not show (as flag.PrintDefaults).
func isZero(f *flag.Flag) (zero bool) {
	defer func() {
		if recover() != nil { // a Value whose zero value cannot print itself
			zero = slices.Contains([]string{"", "0", "0s", "false"}, f.DefValue)
		}
	}()
	t := reflect.TypeOf(f.Value)
	var z reflect.Value
	if t.Kind() == reflect.Pointer {
		z = reflect.New(t.Elem())
	} else {
		z = reflect.Zero(t)
	}
	return f.DefValue == z.Interface().(flag.Value).String() || slices.Contains([]string{"", "0", "0s", "false"}, f.DefValue)
}

// wrap breaks text into lines of at most width characters, at spaces.
func wrap(text string, width int) []string {
	var lines []string
	line := ""
	for _, w := range strings.Fields(text) {
		if line != "" && len(line)+1+len(w) > width {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += w
	}
	return append(lines, line)
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
