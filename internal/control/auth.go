package control

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"os"
	"strings"
)

// requireToken wraps h so that every request needs
// "Authorization: Bearer <token>". The comparison takes the same time
// whatever the token sent: both sides are hashed first, so not even the
// length leaks. A request without the right token is answered 401 and its
// connection closed, so that an unauthenticated connection lives no longer
// than its first request takes to arrive; one with it marks its connection
// authenticated (see limitListener).
func requireToken(token []byte, h http.Handler) http.Handler {
	want := sha256.Sum256(token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := bearer(r.Header.Get("Authorization"))
		sum := sha256.Sum256(got)
		if subtle.ConstantTimeCompare(sum[:], want[:]) != 1 || !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="herd"`)
			w.Header().Set("Connection", "close")
			writeError(w, http.StatusUnauthorized, "missing or wrong bearer token")
			return
		}
		markAuthenticated(r.Context())
		h.ServeHTTP(w, r)
	})
}

// bearer returns the token of an Authorization header value.
func bearer(v string) ([]byte, bool) {
	scheme, tok, ok := strings.Cut(v, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return nil, false
	}
	tok = strings.TrimSpace(tok)
	return []byte(tok), tok != ""
}

// ReadTokenFile reads a bearer token: the file's content less surrounding
// white space. An empty token is an error.
func ReadTokenFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("control: token file: %w", err)
	}
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0:
		return nil, fmt.Errorf("control: token file %s is empty", path)
	case bytes.ContainsAny(b, " \t\r\n"):
		return nil, fmt.Errorf("control: token file %s: the token must be one word", path)
	}
	return b, nil
}

// tokenFilePrivate reports whether only the owner may read path.
func tokenFilePrivate(path string) (bool, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return false, fmt.Errorf("control: token file: %w", err)
	}
	return fi.Mode().Perm()&0o077 == 0, nil
}
