package report

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/refreshd/refreshd/history"
)

// Pins writes the constraint history, one published pin a line, newest first: when, the
// branch, the package and its change, the file, the constraints commit, the run and the
// sources' commit it was built from. A change made outside refreshd says so in place of
// the run, with its author.
func Pins(w io.Writer, pins []history.Pin) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PUBLISHED\tBRANCH\tPACKAGE\tCHANGE\tFILE\tCOMMIT\tRUN\tSOURCE")
	for _, p := range pins {
		run := oneLine(p.Run)
		if p.Outside {
			run = "outside refreshd: " + OneLine(p.Author, 60)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.At.Local().Format("2006-01-02 15:04"), oneLine(p.Branch), oneLine(p.Package),
			oneLine(pinChange(p.Old, p.New)), oneLine(p.File), short(p.Commit), run, short(p.Source))
	}
	tw.Flush()
}

// pinChange is "0.27.2 -> 0.28.1", "added 1.2", "removed 1.2".
func pinChange(old, new string) string {
	switch {
	case old == "":
		return "added " + new
	case new == "":
		return "removed " + old
	}
	return old + " -> " + new
}

// short is a commit id cut to 12 characters, "-" for none.
func short(commit string) string {
	switch {
	case commit == "":
		return "-"
	case len(commit) > 12:
		return commit[:12]
	}
	return commit
}
