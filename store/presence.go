package store

import "gorm.io/gorm"

// PatientDepartures is how many times the visit's patient has closed their
// last open page. Zero means the visit has never been told they left.
func PatientDepartures(tx *gorm.DB, visitID string) (int, error) {
	var n int
	err := tx.Raw(`SELECT patient_departures FROM visits WHERE id = ?`, visitID).Scan(&n).Error
	return n, err
}

// CountPatientDeparture records that the patient's last open page closed and
// returns the new count. The column is outside the Visit model so the
// workflow's writes of the visit never touch it.
func CountPatientDeparture(tx *gorm.DB, visitID string) (int, error) {
	var n int
	err := tx.Raw(`UPDATE visits SET patient_departures = patient_departures + 1 WHERE id = ? RETURNING patient_departures`, visitID).Scan(&n).Error
	return n, err
}
