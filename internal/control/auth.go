package control

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"syscall"
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
	b, err := readSmallFile(path, maxTokenFile)
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

// maxTokenFile is the largest token file read.
const maxTokenFile = 4096

// readSmallFile reads path, which must be a regular file of at most max
// bytes: opened without blocking (a FIFO cannot hang the primary) and read
// through a limit (a device such as /dev/zero cannot fill its memory).
func readSmallFile(path string, max int64) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return nil, err
	} else if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err == nil && int64(len(b)) > max {
		err = fmt.Errorf("%s is over %d bytes", path, max)
	}
	return b, err
}

// tokenFilePrivate reports whether only the owner may read path.
func tokenFilePrivate(path string) (bool, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return false, fmt.Errorf("control: token file: %w", err)
	}
	return fi.Mode().Perm()&0o077 == 0, nil
}
