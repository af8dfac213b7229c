package activities

import (
	"go.temporal.io/sdk/temporal"
)

// Error types of business rejections. They are non-retryable: running the
// activity again would get the same answer. The API maps each to a status.
const (
	ErrInvalid        = "Invalid"        // 400: the request itself is malformed
	ErrNotFound       = "NotFound"       // 404: unknown, or of another clinic
	ErrForbidden      = "Forbidden"      // 403: the actor lacks access to the room
	ErrPlanRequired   = "PlanRequired"   // 403: the clinic's plan lacks the feature
	ErrConflict       = "Conflict"       // 409: the visit's state does not allow it now
	ErrSameRoom       = "SameRoom"       // 422: transfer to the room the patient is in
	ErrTargetRoomGone = "TargetRoomGone" // the target room disappeared mid-transfer
)

func reject(errType, msg string) error {
	return temporal.NewNonRetryableApplicationError(msg, errType, nil)
}
