package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// helpWidth is the column at which flag descriptions are wrapped.
const helpWidth = 79

// clusterUsage writes the usage of a command with cluster flags: the usage
// line, examples, and the flags in their sections, man-page style.
func clusterUsage(cmd *cobra.Command) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Usage:\n  %s\n", cmd.UseLine())
	if cmd.HasExample() {
		fmt.Fprintf(&b, "\nExamples:\n%s\n", cmd.Example)
	}
	sections := map[string][]*pflag.Flag{}
	cmd.Flags().VisitAll(func(fl *pflag.Flag) {
		if fl.Hidden {
			return
		}
		group := "Other"
		if g := fl.Annotations[groupAnnotation]; len(g) > 0 {
			group = g[0]
		}
		sections[group] = append(sections[group], fl)
	})
	for _, group := range append(flagGroups, "Other") {
		if len(sections[group]) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n%s:\n", group)
		for _, fl := range sections[group] {
			writeFlag(&b, fl)
		}
	}
	_, err := io.WriteString(cmd.OutOrStderr(), b.String())
	return err
}

// writeFlag writes one flag: its name and placeholder on a line, then its
// description and default wrapped and indented below.
func writeFlag(b *strings.Builder, fl *pflag.Flag) {
	name, usage := pflag.UnquoteUsage(fl)
	if fl.Shorthand != "" {
		fmt.Fprintf(b, "  -%s, --%s", fl.Shorthand, fl.Name)
	} else {
		fmt.Fprintf(b, "  --%s", fl.Name)
	}
	if name != "" {
		// Strip the placeholder from the front of the description.
		usage = strings.TrimSpace(strings.TrimPrefix(usage, name))
		b.WriteString(" " + name)
	}
	b.WriteString("\n")
	if def := flagDefault(fl); def != "" {
		usage += " Default: " + def + "."
	}
	for _, line := range wrap(usage, helpWidth-6) {
		b.WriteString("      " + line + "\n")
	}
}

// flagDefault returns the default worth showing for fl, or "".
func flagDefault(fl *pflag.Flag) string {
	if strings.Contains(fl.Usage, "Default:") {
		return "" // the description says it in words
	}
	switch fl.DefValue {
	case "", "0", "0s", "[]", "false":
		return ""
	}
	return fl.DefValue
}

// wrap breaks s into lines of at most width columns at spaces.
func wrap(s string, width int) []string {
	var lines []string
	line := ""
	for _, word := range strings.Fields(s) {
		if line != "" && len(line)+1+len(word) > width {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += word
	}
	if line != "" {
		lines = append(lines, line)
	}
	return lines
}
