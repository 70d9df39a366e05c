//go:build nostore

package daemon

// Built with -tags nostore, hearthd acks without storing: the ceiling that
// bench/run.sh measures beside the real build. Never ship this build.
func init() { benchNoStore = true }
