package central

import (
	"os"
	"testing"

	"github.com/guardianai/hearth/central/store/pgtest"
)

func TestMain(m *testing.M) {
	os.Exit(pgtest.Main(m)) // stops the throwaway PostgreSQL of the drain benchmark, if one was started
}
