package clinic

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxMessageLength bounds a chat message, in characters.
const MaxMessageLength = 1000

// Event and audit of a message: the event carries its text to the people
// of the visit; the audit row says only that one was sent.
const (
	EventMessage     = "message.sent"
	AuditMessageSent = "message.sent"
)

// ErrPatientChatOff: the clinic turned patients' messages off.
var ErrPatientChatOff = rejectWith(Forbidden, "chat_off", "this clinic does not take messages from patients")

// MessageText trims a message and refuses an empty or over-long one, or one
// with control or invisible formatting characters (line breaks are fine).
func MessageText(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", reject(Invalid, "the message is empty")
	}
	if !utf8.ValidString(s) {
		return "", reject(Invalid, "the message is not valid text")
	}
	if utf8.RuneCountInString(s) > MaxMessageLength {
		return "", reject(Invalid, fmt.Sprintf("the message is longer than %d characters", MaxMessageLength))
	}
	for _, r := range s {
		if r == '\n' || r == '\t' {
			continue
		}
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return "", reject(Invalid, "the message has control or invisible formatting characters")
		}
	}
	return s, nil
}

// MayMessage says whether a sender may write into a visit's conversation:
// a provider always; its patient unless the clinic turned that off.
func MayMessage(fromPatient, patientChat bool) error {
	if fromPatient && !patientChat {
		return ErrPatientChatOff
	}
	return nil
}
