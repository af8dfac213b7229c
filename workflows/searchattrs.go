package workflows

import (
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
)

// Search attributes let ops find visits in the Temporal UI. They are stored
// unencrypted, so they only ever hold opaque ids, enums and counts.
var (
	ClinicIDAttr   = temporal.NewSearchAttributeKeyKeyword("HandoffClinicID")
	RoomIDAttr     = temporal.NewSearchAttributeKeyKeyword("HandoffRoomID")
	VisitStateAttr = temporal.NewSearchAttributeKeyKeyword("HandoffVisitState")
	TransfersAttr  = temporal.NewSearchAttributeKeyInt64("HandoffTransfers")
)

// SearchAttributes names every custom search attribute with its index type,
// for registering them on a namespace.
func SearchAttributes() map[string]enumspb.IndexedValueType {
	return map[string]enumspb.IndexedValueType{
		ClinicIDAttr.GetName():   enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		RoomIDAttr.GetName():     enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		VisitStateAttr.GetName(): enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		TransfersAttr.GetName():  enumspb.INDEXED_VALUE_TYPE_INT,
	}
}
