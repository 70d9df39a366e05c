package outbox

import "testing"

// Ensure that the linger target keeps the largest recent group, so that a
// commit that left a few phones out does not lower what the next one waits
// for, and that it falls one message per commit once phones leave.
func TestNextLingerTarget(t *testing.T) {
	target := 0
	for _, step := range []struct{ committed, want int }{
		{50, 50}, // all 50 phones
		{47, 49}, // three came late: still wait for them next time
		{50, 50},
		{10, 49}, // 40 phones left: forgotten one commit at a time
		{10, 48},
		{1, 47},
	} {
		target = nextLingerTarget(target, step.committed)
		if target != step.want {
			t.Fatalf("after a commit of %d: target %d, want %d", step.committed, target, step.want)
		}
	}
	for range 100 {
		target = nextLingerTarget(target, 1)
	}
	if target != 1 {
		t.Fatalf("a lone phone's commits leave a target of %d, want 1 (no linger)", target)
	}
}
