package api

import (
	"fmt"
	"net/http"
	"testing"

	"go.temporal.io/api/serviceerror"
)

// A visit that stayed not ready past the request's deadline is a 503 to
// retry, not a 500 (the update itself is retried first: workflows.update).
func TestANotReadyVisitIsNotAnInternalError(t *testing.T) {
	err := fmt.Errorf("ending the visit: %w", serviceerror.NewWorkflowNotReady("workflow task in retry"))
	if got := toAPIError(err); got.Status != http.StatusServiceUnavailable || got.Code != "unavailable" {
		t.Fatalf("got %d %s, want 503 unavailable", got.Status, got.Code)
	}
}
