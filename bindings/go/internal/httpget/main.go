// Command httpget prints the body of a GET (for run-tests.sh, so it needs no curl).
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
)

func main() {
	resp, err := http.Get(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		fmt.Fprintln(os.Stderr, resp.Status)
		os.Exit(1)
	}
	io.Copy(os.Stdout, resp.Body)
}
