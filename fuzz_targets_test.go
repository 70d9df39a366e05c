package hearth

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Ensure that make fuzz runs every fuzz test of the repository: a fuzzer
// missing from the Makefile's list is one nobody runs.
func TestMakeFuzz_ListsEveryFuzzer(t *testing.T) {
	mk, err := os.ReadFile("Makefile")
	if err != nil {
		t.Fatal(err)
	}
	fuzzFunc := regexp.MustCompile(`(?m)^func (Fuzz\w+)\(`)
	err = filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return err
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		dir := "./" + filepath.Dir(path) + "/"
		if filepath.Dir(path) == "." {
			dir = "."
		}
		for _, m := range fuzzFunc.FindAllSubmatch(src, -1) {
			if entry := dir + ":" + string(m[1]); !strings.Contains(string(mk), entry+" ") && !strings.Contains(string(mk), entry+"\n") {
				t.Errorf("%s: %s is not in the Makefile's FUZZERS (want %q)", path, m[1], entry)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
