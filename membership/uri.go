package membership

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
)

// registrySchemes maps the schemes a registry URI may use to whether they
// speak TLS. etcd:// is plain, like http://, which is etcd's own endpoint
// convention.
var registrySchemes = map[string]bool{"etcd": false, "http": false, "https": true}

// ParseRegistry parses a registry URI into etcd endpoints. A URI is a
// comma-separated list of endpoints, each host:port with an optional
// trailing slash; the first has a scheme, etcd://, http:// or https://, and
// the others may repeat it:
//
//	etcd://10.0.0.1:2379,10.0.0.2:2379
//	http://127.0.0.1:2379/
//	https://a.example:2379,https://b.example:2379
//
// Plain endpoints come back as host:port, TLS ones as https://host:port,
// which is how WithEndpoints tells them apart. Errors wrap ErrBadRegistry.
func ParseRegistry(uri string) ([]string, error) {
	bad := func(why string, args ...any) error {
		return fmt.Errorf("registry %q: %w: %s", uri, ErrBadRegistry, fmt.Sprintf(why, args...))
	}
	scheme, _, ok := strings.Cut(uri, "://")
	tlsOn, known := registrySchemes[scheme]
	if !ok || !known {
		return nil, bad("want etcd://, http:// or https:// and host:port[,host:port]")
	}
	var eps []string
	for ep := range strings.SplitSeq(uri, ",") {
		hp, err := parseEndpoint(ep, scheme)
		if err != nil {
			return nil, bad("%v", err)
		}
		if tlsOn {
			hp = "https://" + hp
		}
		eps = append(eps, hp)
	}
	return eps, nil
}

// parseEndpoint returns the host:port of one endpoint of a registry URI
// whose first endpoint has scheme.
func parseEndpoint(ep, scheme string) (string, error) {
	if s, rest, ok := strings.Cut(ep, "://"); ok {
		tlsOn, known := registrySchemes[s]
		if !known || tlsOn != registrySchemes[scheme] {
			return "", fmt.Errorf("%q: every endpoint must use TLS, or none", ep)
		}
		ep = rest
	}
	hp := strings.TrimSuffix(ep, "/")
	if strings.ContainsAny(hp, "/?#@ ") {
		return "", fmt.Errorf("%q: only hosts and ports are allowed", ep)
	}
	host, port, err := net.SplitHostPort(hp)
	if err != nil || host == "" {
		return "", fmt.Errorf("%q is not host:port", ep)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("bad port %q", port)
	}
	return hp, nil
}

// TLSConfig returns the TLS configuration of a client of an https
// registry: ca, if set, is a PEM file of the authorities to trust instead
// of the system's; cert and key, set together, are the PEM files of the
// client's certificate and key. All empty means the system's authorities
// and no client certificate. A file that holds no certificate, or a key
// that does not match its certificate, is an error.
func TLSConfig(ca, cert, key string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if (cert == "") != (key == "") {
		return nil, fmt.Errorf("membership: a client certificate needs both the certificate and the key file")
	}
	if ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, fmt.Errorf("membership: registry CA: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("membership: registry CA %s: no PEM certificate in it", ca)
		}
	}
	if cert != "" {
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("membership: registry client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}
