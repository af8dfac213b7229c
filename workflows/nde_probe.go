//go:build handoff_nde_probe

package workflows

// Built with -tags handoff_nde_probe, the visit workflow starts with a timer
// the recorded histories do not have: a deliberately non-deterministic
// change, so a test can prove `handoff replay` catches one.
func init() { ndeProbe = true }
