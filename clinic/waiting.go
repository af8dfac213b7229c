package clinic

// DefaultWaitAlertMinutes is how long a patient waits before their card
// stands out, unless the clinic sets otherwise.
const DefaultWaitAlertMinutes = 15

// MaxWaitAlertMinutes bounds the setting (a day would alert nobody).
const MaxWaitAlertMinutes = 240

// CheckWaitAlert checks a clinic's long-wait threshold, in minutes.
func CheckWaitAlert(minutes int) error {
	if minutes < 1 || minutes > MaxWaitAlertMinutes {
		return reject(Invalid, "the long-wait threshold is a number of minutes from 1 to 240")
	}
	return nil
}
