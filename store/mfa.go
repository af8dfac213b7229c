package store

import (
	"time"

	"gorm.io/gorm"
)

// MFA holds the second factor's single-use things: sign-in challenges and
// recovery codes.
type MFA struct{ c conn }

// StartTOTP keeps secret as user id's authenticator being enrolled; the
// one in use, if any, stays until a code from the new one confirms it.
func (q Users) StartTOTP(id string, secret Sealed) error {
	return q.c.g.Model(&User{}).Where("id = ?", id).Update("totp_pending_secret", secret).Error
}

// EnableTOTP makes the enrolled authenticator the one in use, from time
// step step (the code that confirmed it), and replaces the recovery codes
// with codeHashes. False if nothing was being enrolled.
func (q Users) EnableTOTP(id string, pending Sealed, step int64, codeHashes []string, at time.Time) (bool, error) {
	res := q.c.g.Model(&User{}).Where("id = ? AND totp_pending_secret <> ''", id).Updates(map[string]any{
		"totp_secret": pending, "totp_pending_secret": "", "totp_enabled_at": at, "totp_last_step": step,
	})
	if res.Error != nil || res.RowsAffected == 0 {
		return false, res.Error
	}
	return true, MFA(q).replaceRecoveryCodes(id, codeHashes)
}

// DisableTOTP turns user id's second factor off and forgets its codes.
func (q Users) DisableTOTP(id string) error {
	if err := q.c.g.Model(&User{}).Where("id = ?", id).Updates(map[string]any{
		"totp_secret": "", "totp_pending_secret": "", "totp_enabled_at": nil, "totp_last_step": 0,
	}).Error; err != nil {
		return err
	}
	return MFA(q).replaceRecoveryCodes(id, nil)
}

// TakeTOTPStep records that user id used the code of time step step. False
// when that step (or a later one) was already used: a code is good once,
// even to two requests racing with it.
func (q Users) TakeTOTPStep(id string, step int64) (bool, error) {
	res := q.c.g.Model(&User{}).Where("id = ? AND totp_last_step < ?", id, step).Update("totp_last_step", step)
	return res.RowsAffected == 1, res.Error
}

func (q MFA) replaceRecoveryCodes(userID string, hashes []string) error {
	if err := q.c.g.Where("user_id = ?", userID).Delete(&RecoveryCode{}).Error; err != nil {
		return err
	}
	if len(hashes) == 0 {
		return nil
	}
	rows := make([]RecoveryCode, len(hashes))
	for i, h := range hashes {
		rows[i] = RecoveryCode{UserID: userID, CodeHash: h}
	}
	return q.c.g.Create(&rows).Error
}

// UseRecoveryCode spends userID's recovery code of hash hash; false if it is
// not theirs or was spent.
func (q MFA) UseRecoveryCode(userID, hash string, at time.Time) (bool, error) {
	res := q.c.g.Model(&RecoveryCode{}).Where("user_id = ? AND code_hash = ? AND used_at IS NULL", userID, hash).Update("used_at", at)
	return res.RowsAffected == 1, res.Error
}

// RecoveryCodesLeft counts userID's unspent recovery codes.
func (q MFA) RecoveryCodesLeft(userID string) (int, error) {
	var n int64
	err := q.c.g.Model(&RecoveryCode{}).Where("user_id = ? AND used_at IS NULL", userID).Count(&n).Error
	return int(n), err
}

// NewChallenge stores a sign-in waiting for its second factor.
func (q MFA) NewChallenge(ch MFAChallenge) error { return q.c.g.Create(&ch).Error }

// Challenge is the live challenge of token hash hash.
func (q MFA) Challenge(hash string, now time.Time) (MFAChallenge, error) {
	return take[MFAChallenge](q.c, "token_hash = ? AND used_at IS NULL AND expires_at > ?", hash, now)
}

// ChallengeTried counts a wrong code against challenge id and ends it after
// max tries; it says whether the challenge is still live.
func (q MFA) ChallengeTried(id string, max int, now time.Time) (bool, error) {
	if err := q.c.g.Model(&MFAChallenge{}).Where("id = ?", id).Update("attempts", gorm.Expr("attempts + 1")).Error; err != nil {
		return false, err
	}
	res := q.c.g.Model(&MFAChallenge{}).Where("id = ? AND attempts >= ? AND used_at IS NULL", id, max).Update("used_at", now)
	return res.RowsAffected == 0, res.Error
}

// ChallengeMet ends challenge id as passed; false if it already ended (a
// second request with the same challenge loses).
func (q MFA) ChallengeMet(id string, now time.Time) (bool, error) {
	res := q.c.g.Model(&MFAChallenge{}).Where("id = ? AND used_at IS NULL", id).Update("used_at", now)
	return res.RowsAffected == 1, res.Error
}

// SetRequireMFA turns the clinic's two-factor requirement on or off.
func (q Clinics) SetRequireMFA(id string, on bool) error {
	return q.c.g.Model(&Clinic{}).Where("id = ?", id).Update("require_mfa", on).Error
}
