package config

import (
	"net"
	"strconv"
)

// Metrics is the Prometheus endpoint.
type Metrics struct {
	// Listen is the host:port where GET /metrics is served, e.g.
	// "127.0.0.1:9464". Empty (the default): no metrics endpoint. The
	// metrics name cameras and counts footage, so keep it on loopback or a
	// management network.
	Listen string `yaml:"listen"`
}

func (v *validator) metrics(m Metrics) {
	if m.Listen == "" {
		return
	}
	host, port, err := net.SplitHostPort(m.Listen)
	if err != nil {
		v.add("metrics.listen", "must be host:port (e.g. 127.0.0.1:9464), got %q: %v", m.Listen, err)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		v.add("metrics.listen", "port must be 1-65535, got %q", port)
	}
	if host != "" && net.ParseIP(host) == nil && host != "localhost" {
		v.add("metrics.listen", "host must be an IP address or localhost (a name may resolve to another interface), got %q", host)
	}
}
