package config

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
}

// Register adds the database flag to fs; def is the default DSN (may be empty).
func (d *Database) Register(fs *FlagSet, def string) {
	fs.StringVar(&d.DSN, "db", def, "app database: postgres://user:pass@host:5432/db?sslmode=disable, or sqlite:PATH for a SQLite file")
}
