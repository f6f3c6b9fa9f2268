package config

// Metrics is the Prometheus endpoint.
type Metrics struct {
	// Listen is the host:port where GET /metrics is served, e.g.
	// "127.0.0.1:9464". Empty (the default): no metrics endpoint. The
	// metrics name cameras and counts footage, so keep it on loopback or a
	// management network.
	Listen string `yaml:"listen"`
}

func (v *validator) metrics(m Metrics) {
	if m.Listen != "" {
		v.listen("metrics.listen", m.Listen, "127.0.0.1:9464")
	}
}
