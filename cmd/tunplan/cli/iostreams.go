package cli

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/fatih/color"
	"github.com/mattn/go-isatty"
)

// IOStreams is where a command reads and writes, and whether it may colour and prompt. Commands
// never touch os.Stdout directly, so tests can run them against buffers.
type IOStreams struct {
	In     *bufio.Reader
	Out    io.Writer
	ErrOut io.Writer
	// Color is true when Out is a terminal and NO_COLOR is unset.
	Color bool
	// Interactive is true when In is a terminal (apply may prompt).
	Interactive bool
}

// System wires the process's standard streams.
func System() *IOStreams {
	_, noColor := os.LookupEnv("NO_COLOR")
	return &IOStreams{
		In:          bufio.NewReader(os.Stdin),
		Out:         os.Stdout,
		ErrOut:      os.Stderr,
		Color:       !noColor && isatty.IsTerminal(os.Stdout.Fd()),
		Interactive: isatty.IsTerminal(os.Stdin.Fd()),
	}
}

// paint returns a function that colours text when colour is on and leaves it alone otherwise.
func (s *IOStreams) paint(attrs ...color.Attribute) func(string) string {
	c := color.New(attrs...)
	if s.Color {
		c.EnableColor()
	} else {
		c.DisableColor()
	}
	return func(text string) string { return c.Sprint(text) }
}

// errorf writes one error line to ErrOut.
func (s *IOStreams) errorf(format string, args ...any) {
	fmt.Fprintf(s.ErrOut, s.paint(color.FgRed, color.Bold)("Error: ")+format+"\n", args...)
}

// confirm asks question and reports whether the answer was "yes"; otherwise it says cancelled. It
// refuses without a terminal: the command (named verb) then needs --auto-approve.
func (s *IOStreams) confirm(verb, question, cancelled string) (bool, error) {
	if !s.Interactive {
		return false, fmt.Errorf("standard input is not a terminal: run with --auto-approve to %s without confirmation", verb)
	}
	fmt.Fprintf(s.Out, "\n%s Only 'yes' will be accepted: ", question)
	line, _ := s.In.ReadString('\n')
	if strings.TrimSpace(line) != "yes" {
		fmt.Fprintln(s.Out, cancelled)
		return false, nil
	}
	return true, nil
}
