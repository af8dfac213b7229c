package store

import (
	"database/sql/driver"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/handoff-telehealth/handoff/codec"
)

// Sealed is a column that holds patient data (a patient's name, a hand-off
// note, an event's text, an app's notes): encrypted before it is written
// and decrypted as it is read, with the data keys (UseDataKeys), which
// rotate like the payload codec's. A database dump, backup or replica holds
// only ciphertext. Nothing searches these columns.
type Sealed string

// dataKeys are the process's keys for Sealed columns. They are process-wide
// because database/sql hands a Valuer no context to find them in.
var dataKeys atomic.Pointer[codec.Codec]

// UseDataKeys sets the keys Sealed columns are written and read with.
func UseDataKeys(keys *codec.Codec) { dataKeys.Store(keys) }

// errNoDataKeys: a process that reaches patient data must have its keys.
var errNoDataKeys = errors.New("no data keys configured: set --data-keys or HANDOFF_DATA_KEYS (id:base64 of 32 random bytes)")

// Value seals s for the database. Empty stays empty: it says nothing, and
// "no note", "no secret" stay something a query can ask for.
func (s Sealed) Value() (driver.Value, error) {
	if s == "" {
		return "", nil
	}
	keys := dataKeys.Load()
	if keys == nil {
		return nil, errNoDataKeys
	}
	return keys.SealString(string(s))
}

// Scan opens a sealed value from the database.
func (s *Sealed) Scan(src any) error {
	var raw string
	switch v := src.(type) {
	case nil:
		*s = ""
		return nil
	case string:
		raw = v
	case []byte:
		raw = string(v)
	default:
		return fmt.Errorf("sealed column: unexpected %T", src)
	}
	if _, sealed := codec.SealedKeyID(raw); !sealed {
		*s = Sealed(raw) // written before encryption at rest, or purged
		return nil
	}
	keys := dataKeys.Load()
	if keys == nil {
		return errNoDataKeys
	}
	plain, err := keys.OpenString(raw)
	*s = Sealed(plain)
	return err
}

// String is the plain text.
func (s Sealed) String() string { return string(s) }
