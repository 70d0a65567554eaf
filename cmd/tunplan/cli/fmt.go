package cli

import (
	"bytes"
	"fmt"
	"os"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/spf13/cobra"
)

// exitUnformatted is fmt --check's exit status when a file is not formatted (Terraform's).
const exitUnformatted = 3

type fmtOptions struct {
	*globalOptions
	check bool
}

func newFmt(g *globalOptions) *cobra.Command {
	o := &fmtOptions{globalOptions: g}
	cmd := &cobra.Command{
		Use:   "fmt [file ...]",
		Short: "Rewrite plan files in the canonical HCL layout",
		Long: `fmt rewrites each plan file (tunplan.hcl when none is given) in the canonical layout of HCL, as
terraform fmt does: indentation, aligned equals signs, spacing. It changes layout only, never
meaning; a file that does not parse is reported and left alone. It lists the files it changed.

With --check it changes nothing, lists the files that are not formatted and exits 3 if there are any.`,
		Example: `  tunplan fmt
  tunplan fmt plans/*.hcl
  tunplan fmt --check tunplan.hcl   # in CI`,
		RunE: func(_ *cobra.Command, args []string) error { return fmtRun(o, args) },
	}
	cmd.Flags().BoolVar(&o.check, "check", false, "change nothing; exit 3 if a file is not formatted")
	return cmd
}

func fmtRun(o *fmtOptions, files []string) error {
	if len(files) == 0 {
		files = []string{"tunplan.hcl"}
	}
	unformatted, failed := 0, false
	for _, name := range files {
		src, err := os.ReadFile(name)
		if err != nil {
			o.io.errorf("%v", err)
			failed = true
			continue
		}
		if _, diags := hclsyntax.ParseConfig(src, name, hcl.InitialPos); diags.HasErrors() {
			writeDiagnostics(o.io, o.io.ErrOut, map[string]*hcl.File{name: {Bytes: src}}, diags)
			failed = true
			continue
		}
		out := hclwrite.Format(src)
		if bytes.Equal(out, src) {
			continue
		}
		unformatted++
		fmt.Fprintln(o.io.Out, name)
		if o.check {
			continue
		}
		st, err := os.Stat(name)
		if err == nil {
			err = os.WriteFile(name, out, st.Mode().Perm())
		}
		if err != nil {
			o.io.errorf("%v", err)
			failed = true
		}
	}
	switch {
	case failed:
		return errReported
	case o.check && unformatted > 0:
		return exitCodeError{exitUnformatted}
	}
	return nil
}
