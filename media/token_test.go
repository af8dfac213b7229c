package media

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// The media secret rotates: tokens carry the id of the key that signed
// them; during a rotation both keys verify, and once the old key is gone its
// tokens are refused. No token lives longer than MaxTokenLifetime, even one
// a holder of the secret minted for longer.
func TestTokenKeysRotateAndLifetimesAreBounded(t *testing.T) {
	oldKey, newKey := "old1:"+strings.Repeat("a", 32), "new1:"+strings.Repeat("b", 32)
	before := NewTokens(oldKey)
	during := NewTokens(newKey + "," + oldKey)
	after := NewTokens(newKey)

	issued := before.Mint("patient:v1", "call-1", time.Minute)
	if c, err := during.Verify(issued); err != nil || c.Key != "old1" || c.Call != "call-1" {
		t.Fatalf("during the rotation an old token verifies: %+v %v", c, err)
	}
	fresh := during.Mint("patient:v1", "", time.Minute)
	if c, err := after.Verify(fresh); err != nil || c.Key != "new1" {
		t.Fatalf("the new key signs: %+v %v", c, err)
	}
	if _, err := after.Verify(issued); err == nil {
		t.Fatal("a token of a removed key verifies")
	}

	if c, _ := before.Verify(before.Mint("p", "", 24*time.Hour)); time.Until(time.Unix(c.Expires, 0)) > MaxTokenLifetime {
		t.Fatal("Mint made a token longer than the maximum")
	}
	// A token a secret holder signs by hand for a day is refused.
	body, _ := json.Marshal(Claims{Subject: "p", Key: "old1", Issued: time.Now().Unix(), Expires: time.Now().Add(24 * time.Hour).Unix()})
	payload := base64.RawURLEncoding.EncodeToString(body)
	if _, err := before.Verify(payload + "." + sign([]byte(strings.Repeat("a", 32)), payload)); err != errLongToken {
		t.Fatalf("a day-long token: %v", err)
	}

	// One plain secret (no id) works as before.
	legacy := NewTokens("a plain secret of thirty-two bytes!")
	if _, err := legacy.Verify(legacy.Mint("p", "", time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got := SecretValues(newKey + "," + oldKey); len(got) != 2 || got[0] != strings.Repeat("b", 32) {
		t.Fatalf("SecretValues: %v", got)
	}
}
