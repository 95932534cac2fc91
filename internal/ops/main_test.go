package ops

import (
	"testing"

	"github.com/hotswap/hotswap/internal/pgtest"
)

// Some tests of this package run several services on one PostgreSQL
// database from pgtest.
func TestMain(m *testing.M) { pgtest.Main(m) }
