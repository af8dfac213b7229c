package config

import (
	"fmt"
	"sort"
	"strings"
)

// Temporal says how a process reaches the Temporal cluster.
type Temporal struct {
	Address   string
	Namespace string
	// CodecKeys encrypt every payload: "id:base64key[,id:base64key…]".
	CodecKeys string
}

// Register adds the Temporal flags to fs.
func (t *Temporal) Register(fs *FlagSet) {
	fs.StringVar(&t.Address, "temporal-address", "127.0.0.1:7233", "host:port of the Temporal frontend (gRPC)")
	fs.StringVar(&t.Namespace, "temporal-namespace", "default", "Temporal namespace that holds the visits")
	fs.StringVar(&t.CodecKeys, "codec-keys", "", "payload encryption keys, id:base64(32 bytes)[,…]; the first encrypts, all decrypt (rotate by prepending)")
}

// Database says where the app's own data lives.
type Database struct {
	DSN string
	// DataKeys seal patient data in the database (store.Sealed), in the
	// codec's format: "id:base64key[,id:base64key…]", the first seals.
	DataKeys string
}

// Register adds the database flag to fs; def is the default DSN (may be empty).
func (d *Database) Register(fs *FlagSet, def string) {
	fs.StringVar(&d.DSN, "db", def, "app database: postgres://user:pass@host:5432/db?sslmode=disable, or sqlite:PATH for a SQLite file")
	fs.StringVar(&d.DataKeys, "data-keys", "", "keys sealing patient data in the database, id:base64(32 bytes)[,…]; the first seals, all open (rotate by prepending, then `handoff admin reencrypt`)")
}

// MinSecretBytes is the shortest secret a production process accepts.
const MinSecretBytes = 32

// CheckSecret refuses a secret a production process must not run with: a
// known placeholder (the compose file's old `change-me-…` values and the
// like) or one shorter than MinSecretBytes. Empty is the caller's to judge
// (many secrets turn a feature off when empty).
func CheckSecret(setting, value string) error {
	if value == "" {
		return nil
	}
	lower := strings.ToLower(value)
	for _, p := range []string{"change-me", "changeme", "change_me", "placeholder", "example", "secret-here"} {
		if strings.Contains(lower, p) {
			return fmt.Errorf("%s (%s) is a placeholder: generate a secret, e.g. openssl rand -hex 32 (see deploy/make-secrets.sh)", setting, EnvName(strings.TrimPrefix(setting, "--")))
		}
	}
	if len(value) < MinSecretBytes {
		return fmt.Errorf("%s (%s) is shorter than %d bytes: generate one, e.g. openssl rand -hex 32", setting, EnvName(strings.TrimPrefix(setting, "--")), MinSecretBytes)
	}
	return nil
}

// CheckSecrets checks each setting → value with CheckSecret.
func CheckSecrets(secrets map[string]string) error {
	names := make([]string, 0, len(secrets))
	for n := range secrets {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := CheckSecret(n, secrets[n]); err != nil {
			return err
		}
	}
	return nil
}
