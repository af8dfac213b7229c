package activities

import (
	"errors"

	"go.temporal.io/sdk/temporal"

	"github.com/handoff-telehealth/handoff/clinic"
)

// Error types of business rejections: the domain's kinds (package clinic),
// by their names here for the code that already uses them. They are
// non-retryable: running the activity again would get the same answer.
const (
	ErrInvalid        = clinic.Invalid
	ErrNotFound       = clinic.NotFound
	ErrForbidden      = clinic.Forbidden
	ErrPlanRequired   = clinic.PlanRequired
	ErrConflict       = clinic.Conflict
	ErrSameRoom       = clinic.SameRoom
	ErrTargetRoomGone = clinic.TargetRoomGone
)

func reject(errType, msg string) error {
	return temporal.NewNonRetryableApplicationError(msg, errType, nil)
}

// AsApplicationError makes a domain rule's rejection the Temporal error of
// its kind (non-retryable); other errors pass unchanged.
func AsApplicationError(err error) error {
	var r *clinic.Rejection
	if errors.As(err, &r) {
		return reject(r.Kind, r.Message)
	}
	return err
}
