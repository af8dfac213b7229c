package workflows

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/mocks"
)

// An update the server refuses because the visit's workflow is not ready
// (its task was just rejected) is sent again, with the same update id, until
// it passes: the request that asked for it gets its answer, not a 500. A
// refusal that is not transient comes back at once; and the retries end
// with the caller's deadline.
func TestUpdatesRetryTransientRefusals(t *testing.T) {
	sameID := mock.MatchedBy(func(o client.UpdateWorkflowOptions) bool { return o.UpdateID == "end-1" && o.UpdateName == UpdateEnd })

	c := &mocks.Client{}
	done := &mocks.WorkflowUpdateHandle{}
	done.On("Get", mock.Anything, mock.Anything).Return(nil)
	c.On("UpdateWorkflow", mock.Anything, sameID).Return(nil, serviceerror.NewWorkflowNotReady("workflow task in retry")).Times(3)
	c.On("UpdateWorkflow", mock.Anything, sameID).Return(done, nil).Once()
	_, err := End(context.Background(), c, "visit-1", "end-1", "user-1")
	require.NoError(t, err)
	c.AssertNumberOfCalls(t, "UpdateWorkflow", 4)

	c = &mocks.Client{}
	c.On("UpdateWorkflow", mock.Anything, sameID).Return(nil, serviceerror.NewNotFound("no such workflow")).Once()
	_, err = End(context.Background(), c, "visit-1", "end-1", "user-1")
	var notFound *serviceerror.NotFound
	require.True(t, errors.As(err, &notFound))
	c.AssertNumberOfCalls(t, "UpdateWorkflow", 1)

	c = &mocks.Client{}
	c.On("UpdateWorkflow", mock.Anything, sameID).Return(nil, serviceerror.NewWorkflowNotReady("never ready"))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = End(ctx, c, "visit-1", "end-1", "user-1")
	var notReady *serviceerror.WorkflowNotReady
	require.True(t, errors.As(err, &notReady))
	require.Less(t, time.Since(start), time.Second, "within the caller's deadline")
}
