// Package namespace prepares a Temporal namespace for Handoff: the search
// attributes its visits are listed by.
package namespace

import (
	"context"
	"fmt"
	"sort"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/handoff-telehealth/handoff/workflows"
)

// EnsureSearchAttributes registers Handoff's search attributes on the
// namespace, adding only the missing ones; it returns the names it added.
func EnsureSearchAttributes(ctx context.Context, c client.Client, namespace string) ([]string, error) {
	ops := c.OperatorService()
	have, err := ops.ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return nil, fmt.Errorf("listing search attributes of %q: %w", namespace, err)
	}
	req := &operatorservice.AddSearchAttributesRequest{Namespace: namespace, SearchAttributes: map[string]enumspb.IndexedValueType{}}
	for name, typ := range workflows.SearchAttributes() {
		if got, ok := have.GetCustomAttributes()[name]; ok {
			if got != typ {
				return nil, fmt.Errorf("search attribute %s exists on %q as %s, Handoff needs %s", name, namespace, got, typ)
			}
			continue
		}
		req.SearchAttributes[name] = typ
	}
	if len(req.SearchAttributes) == 0 {
		return nil, nil
	}
	if _, err := ops.AddSearchAttributes(ctx, req); err != nil {
		return nil, fmt.Errorf("adding search attributes to %q: %w", namespace, err)
	}
	added := make([]string, 0, len(req.SearchAttributes))
	for name := range req.SearchAttributes {
		added = append(added, name)
	}
	sort.Strings(added)
	return added, nil
}
