package apptest

import (
	"fmt"
	"os"
	"testing"

	"github.com/guardianai/hearth/central/store/pgtest"
)

func TestMain(m *testing.M) {
	dir, err := buildBinaries()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := pgtest.Main(m) // stops the throwaway PostgreSQL, if one was started
	os.RemoveAll(dir)
	os.Exit(code)
}
