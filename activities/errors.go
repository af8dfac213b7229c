package activities

import (
	"errors"

	"go.temporal.io/sdk/temporal"

	"github.com/handoff-telehealth/handoff/clinic"
)

// AsApplicationError makes a domain rule's rejection the Temporal error of
// its kind (clinic.Kind as the error type), non-retryable: running the step
// again would get the same answer. Other errors pass unchanged.
func AsApplicationError(err error) error {
	var r *clinic.Rejection
	if errors.As(err, &r) {
		return temporal.NewNonRetryableApplicationError(r.Message, r.Kind, nil)
	}
	return err
}

// reject is a rejection the activities give of their own.
func reject(kind clinic.Kind, msg string) error {
	return AsApplicationError(&clinic.Rejection{Kind: kind, Message: msg})
}
