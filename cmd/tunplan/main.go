// Command tunplan makes LVS-TUN directors and realservers match an HCL plan over SSH.
package main

import (
	"os"

	"github.com/tunplan/tunplan/cmd/tunplan/cli"
)

func main() {
	os.Exit(cli.Main(cli.System(), os.Args[1:]))
}
