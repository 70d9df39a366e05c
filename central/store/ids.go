package store

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/guardianai/hearth"
)

// randomURLSafe returns n random bytes as unpadded base64url.
func randomURLSafe(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand panics on a broken source)
	return base64.RawURLEncoding.EncodeToString(b)
}

// newToken returns a fresh home token: 32 random bytes, 43 URL-safe characters.
func newToken() string { return randomURLSafe(32) }

// newChildHash returns a fresh child hash like the seed's: 32 random bytes,
// 43 URL-safe characters.
func newChildHash() string { return randomURLSafe(32) }

// newHomeID returns a short random home id an operator can type.
func newHomeID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return "h" + hex.EncodeToString(b)
}

// hashToken is what the database keeps of a token. Tokens are 32 random
// bytes, so a plain SHA-256 cannot be reversed or guessed and equality of
// hashes can be checked by the database index.
func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// checkChildHash validates an operator-supplied child hash: it becomes part
// of URL paths (/ws/ingest/<hash>/), so only unreserved URL characters.
func checkChildHash(h string) error {
	if len(h) == 0 || len(h) > 128 {
		return fmt.Errorf("%w: child hash must be 1-128 characters", ErrInvalid)
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~", c) >= 0
		if !ok {
			return fmt.Errorf("%w: child hash may hold only A-Z a-z 0-9 - . _ ~", ErrInvalid)
		}
	}
	return nil
}

func checkHomeName(name string) error {
	if strings.TrimSpace(name) == "" || len(name) > 200 {
		return fmt.Errorf("%w: home name must be 1-200 characters", ErrInvalid)
	}
	return nil
}

// parseRange checks a [from, to] range of dates.
func parseRange(from, to string) error {
	for _, d := range []string{from, to} {
		if _, err := time.Parse(hearth.DateLayout, d); err != nil {
			return fmt.Errorf("%w: %q is not a date YYYY-MM-DD", ErrInvalid, d)
		}
	}
	return nil
}

// homeList is the homes of a child of hearth's schema, where a child has
// one home, or none (inHome false) once detached from it.
func homeList(home string, inHome bool) []string {
	if !inHome {
		return []string{}
	}
	return []string{home}
}

// childHome is ChildHome from ChildHomes in hearth's schema: a detached
// child has no home and is on no roster, so ok is false for it as for an
// unknown child (central's device listener refuses both).
func childHome(homes []string, err error) (string, bool, error) {
	if err != nil || len(homes) == 0 {
		return "", false, err
	}
	return homes[0], true, nil
}

// ownerOf is a child's entry in owners in hearth's schema: notHome for a
// detached one, so an edge's batch for it is refused as another home's
// child (as in the GuardianAI schema), and plan refuses it without a home
// (central's device listener) as unknown.
func ownerOf(home string, inHome bool) string {
	if !inHome {
		return notHome
	}
	return home
}
